"""The weights of the demo's multilayer perceptron: the safetensors file and its content hash.

One module for the artifact, apart from the interfaces that run it (numpy, torch, jax), so each
interface imports the weights without importing the others. The content hash names the model
everywhere (registry versions, gate reports, the demo's report): equal weights give equal
hashes whatever file or framework they came from.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.errors import ValidationError

__all__ = ["ACTIVATIONS", "MLPWeights", "check_mlp", "content_hash", "load_mlp", "save_mlp"]

F32 = npt.NDArray[np.float32]


def content_hash(tensors: Mapping[str, npt.NDArray[Any]]) -> str:
    """SHA-256 over the tensors in name order: name, dtype, shape, then the raw bytes.

    Equal weights give equal hashes whatever file or framework they came from.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}\n".encode())
        h.update(arr.data.cast("B"))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class MLPWeights:
    """Weights of ``normalize -> (linear, activation)* -> linear -> softmax``.

    ``weights[i]`` has shape (out, in) as in torch's ``nn.Linear``; ``mean``/``std`` normalize
    the raw features and ``clip`` bounds the normalized values.
    """

    weights: tuple[F32, ...]
    biases: tuple[F32, ...]
    mean: F32
    std: F32
    clip: float
    activation: str = "relu"

    def tensors(self) -> dict[str, F32]:
        out: dict[str, F32] = {"norm.mean": self.mean, "norm.std": self.std}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f"layers.{i}.weight"] = w
            out[f"layers.{i}.bias"] = b
        return out

    @property
    def in_features(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weights[-1].shape[0])

    def content_hash(self) -> str:
        h = hashlib.sha256(content_hash(self.tensors()).encode())
        h.update(f"clip={self.clip!r}|act={self.activation}".encode())
        return h.hexdigest()


ACTIVATIONS = ("relu", "tanh")


def load_mlp(path: str | os.PathLike[str]) -> MLPWeights:
    """Read an MLP written by :func:`save_mlp`, checking its layer shapes chain."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="numpy") as f:
        meta = f.metadata() or {}
        names = set(f.keys())
        tensors = {k: np.ascontiguousarray(f.get_tensor(k), dtype=np.float32) for k in names}
    n = sum(1 for k in names if k.endswith(".weight"))
    try:
        ws = tuple(tensors[f"layers.{i}.weight"] for i in range(n))
        bs = tuple(tensors[f"layers.{i}.bias"] for i in range(n))
        mlp = MLPWeights(
            ws,
            bs,
            tensors["norm.mean"],
            tensors["norm.std"],
            float(meta.get("clip", "5.0")),
            meta.get("activation", "relu"),
        )
    except KeyError as exc:
        raise ValidationError(f"{os.fspath(path)}: missing tensor {exc}; not an MLP file") from exc
    check_mlp(mlp, os.fspath(path))
    return mlp


def check_mlp(mlp: MLPWeights, where: str) -> None:
    if not mlp.weights or mlp.activation not in ACTIVATIONS:
        raise ValidationError(f"{where}: need >= 1 layer and activation in {ACTIVATIONS}")
    prev = mlp.mean.shape[0]
    if mlp.std.shape != (prev,) or not np.all(mlp.std > 0):
        raise ValidationError(f"{where}: norm.std must be {prev} positive values")
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        if w.ndim != 2 or w.shape[1] != prev or b.shape != (w.shape[0],):
            raise ValidationError(f"{where}: layer {i} shape {w.shape} does not follow {prev}")
        prev = w.shape[0]


def save_mlp(mlp: MLPWeights, directory: str | os.PathLike[str], prefix: str = "policy") -> str:
    """Write ``<prefix>-<hash12>.safetensors`` into ``directory``; returns the path."""
    from safetensors.numpy import save_file

    check_mlp(mlp, prefix)
    digest = mlp.content_hash()
    path = os.path.join(os.fspath(directory), f"{prefix}-{digest[:12]}.safetensors")
    meta = {"clip": repr(mlp.clip), "activation": mlp.activation, "content_hash": digest}
    save_file(mlp.tensors(), path, metadata=meta)
    return path
