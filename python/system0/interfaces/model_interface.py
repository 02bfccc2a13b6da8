"""``AIModelInterface``: one way to load, run and describe a model, whatever its framework.

Every interface takes a float32 batch (numpy, rows first) and returns numpy, so the engine and
the data pipeline never care which framework runs underneath. Each call goes through
:class:`~system0.interfaces.monitoring_hook.AIMonitoring` (pre and post hooks) and is timed on
the process clock. ``introspect()`` describes the model: input and output specs, parameter
count, dtype, device, and the content hash of the weights, which names the artifact.

``NumpyModelInterface`` runs a multilayer perceptron stored as safetensors with numpy alone,
so the demo works on the light install; ``TorchModelInterface`` and ``JaxModelInterface``
(imported from here, loading their frameworks only when constructed) run the same weights.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from system0 import _core
from system0.errors import ValidationError
from system0.interfaces.monitoring_hook import AIMonitoring, InferenceEvent

__all__ = [
    "AIModelInterface",
    "MLPWeights",
    "ModelInfo",
    "NumpyModelInterface",
    "TensorSpec",
    "content_hash",
    "load_mlp",
    "save_mlp",
]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, shape (``None`` for the batch dimension) and dtype of one input or output."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``introspect()`` reports."""

    name: str
    backend: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameter_count: int
    dtype: str
    device: str
    content_hash: str


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


class AIModelInterface(abc.ABC):
    """Base of every model interface: ``load``, ``infer``, ``introspect``.

    Subclasses implement ``_forward`` (numpy in, numpy out) and ``introspect``; ``infer``
    validates the batch against the input spec, emits the monitoring hooks and times the call.
    """

    backend = "abstract"

    def __init__(self, *, name: str = "model", monitoring: AIMonitoring | None = None) -> None:
        self.name = name
        self.monitoring = monitoring if monitoring is not None else AIMonitoring()
        self._features: int | None = None

    @abc.abstractmethod
    def load(self, source: Any) -> Self:
        """Load weights from ``source`` (a path or a framework object); returns ``self``."""

    @abc.abstractmethod
    def introspect(self) -> ModelInfo: ...

    @abc.abstractmethod
    def _forward(self, x: F32) -> npt.NDArray[Any]:
        """Run the model on a validated float32 batch of shape (rows, features)."""

    @property
    def num_features(self) -> int:
        if self._features is None:
            shape = self.introspect().inputs[0].shape
            last = shape[-1]
            if last is None:
                raise ValidationError(f"{self.name}: input spec has no fixed feature size")
            self._features = last
        return self._features

    def check_batch(self, batch: npt.ArrayLike) -> F32:
        """The batch as contiguous float32 (rows, features), or ``ValidationError``."""
        x = np.asarray(batch)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValidationError(
                f"{self.name}: batch must have shape (rows, {self.num_features}), got {x.shape}"
            )
        if x.dtype != np.float32:
            if x.dtype.kind not in "fiu":
                raise ValidationError(f"{self.name}: batch dtype {x.dtype} is not numeric")
            x = x.astype(np.float32)
        return np.ascontiguousarray(x)

    def infer(self, batch: npt.ArrayLike) -> npt.NDArray[Any]:
        """Run the model on a batch (rows, features); hooks see every call, failed or not."""
        return self.infer_checked(self.check_batch(batch))

    def infer_checked(self, x: F32) -> npt.NDArray[Any]:
        """:meth:`infer` for a batch already in the form ``check_batch`` returns (contiguous
        float32, (rows, features)): the inference engine validates every request once at
        its edge and calls this, instead of paying for the same checks twice."""
        event = InferenceEvent(self.name, self.backend, x.shape[0], _core.now_ns(), x)
        mon = self.monitoring
        mon.before(event)
        try:
            event.outputs = self._forward(x)
        except BaseException as exc:
            event.error = exc
            raise
        finally:
            event.end_ns = _core.now_ns()
            mon.after(event)
        return event.outputs


# --- a multilayer perceptron stored as safetensors --------------------------------------------


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


_ACTIVATIONS = ("relu", "tanh")


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
    _check_mlp(mlp, os.fspath(path))
    return mlp


def _check_mlp(mlp: MLPWeights, where: str) -> None:
    if not mlp.weights or mlp.activation not in _ACTIVATIONS:
        raise ValidationError(f"{where}: need >= 1 layer and activation in {_ACTIVATIONS}")
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

    _check_mlp(mlp, prefix)
    digest = mlp.content_hash()
    path = os.path.join(os.fspath(directory), f"{prefix}-{digest[:12]}.safetensors")
    meta = {"clip": repr(mlp.clip), "activation": mlp.activation, "content_hash": digest}
    save_file(mlp.tensors(), path, metadata=meta)
    return path


def softmax(z: F32) -> F32:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class NumpyModelInterface(AIModelInterface):
    """The MLP on numpy (and the Rust normalizer): no framework needed.

    Returns action probabilities, shape (rows, actions).
    """

    backend = "numpy"

    def __init__(
        self,
        mlp: MLPWeights | None = None,
        *,
        name: str = "policy",
        monitoring: AIMonitoring | None = None,
    ) -> None:
        super().__init__(name=name, monitoring=monitoring)
        self._mlp: MLPWeights | None = None
        if mlp is not None:
            self._set(mlp)

    def _set(self, mlp: MLPWeights) -> None:
        _check_mlp(mlp, self.name)
        self._mlp = mlp
        # transposed once so each layer is x @ w (rows stay contiguous)
        self._wt = [np.ascontiguousarray(w.T) for w in mlp.weights]
        # normalization constants checked once here, not on every call
        self._norm = (mlp.mean.tolist(), (1.0 / mlp.std).astype(np.float32).tolist(), mlp.clip)
        self._hash = mlp.content_hash()
        self._features = mlp.in_features

    def load(self, source: Any) -> Self:
        self._set(source if isinstance(source, MLPWeights) else load_mlp(source))
        return self

    @property
    def mlp(self) -> MLPWeights:
        if self._mlp is None:
            raise ValidationError(f"{self.name}: no weights loaded; call load(path) first")
        return self._mlp

    def _forward(self, x: F32) -> npt.NDArray[Any]:
        mlp = self.mlp
        h = np.empty_like(x)
        _core.perf_normalize(x, h, *self._norm)
        last = len(self._wt) - 1
        for i, (wt, b) in enumerate(zip(self._wt, mlp.biases, strict=True)):
            h = h @ wt
            h += b
            if i < last:
                if mlp.activation == "relu":
                    np.maximum(h, 0.0, out=h)
                else:
                    np.tanh(h, out=h)
        return softmax(h)

    def introspect(self) -> ModelInfo:
        return mlp_info(self.mlp, self.name, self.backend, "cpu", "float32", self._hash)


def mlp_info(
    mlp: MLPWeights, name: str, backend: str, device: str, dtype: str, digest: str
) -> ModelInfo:
    params = sum(w.size + b.size for w, b in zip(mlp.weights, mlp.biases, strict=True))
    return ModelInfo(
        name=name,
        backend=backend,
        inputs=(TensorSpec("features", (None, mlp.in_features)),),
        outputs=(TensorSpec("probabilities", (None, mlp.out_features)),),
        parameter_count=int(params),
        dtype=dtype,
        device=device,
        content_hash=digest,
    )


from system0.interfaces.jax_model import JaxModelInterface  # noqa: E402
from system0.interfaces.torch_model import TorchModelInterface  # noqa: E402

__all__ += ["JaxModelInterface", "TorchModelInterface", "mlp_info", "softmax"]
