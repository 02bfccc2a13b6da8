"""The shipped demo policy: find its weights in the package and load them on a backend."""

from __future__ import annotations

import os
import pathlib
from typing import Any

from system0.errors import InvalidArgument
from system0.interfaces.model_interface import AIModelInterface, NumpyModelInterface
from system0.interfaces.monitoring_hook import AIMonitoring

__all__ = ["BACKENDS", "load_policy", "policy_weights_path"]

BACKENDS = ("numpy", "torch", "jax")
WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"


def policy_weights_path() -> pathlib.Path:
    """The one ``policy-<hash>.safetensors`` shipped in the package."""
    found = sorted(WEIGHTS_DIR.glob("policy-*.safetensors"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected one policy-*.safetensors in {WEIGHTS_DIR}, found {len(found)}; "
            "run scripts/train_demo_policy.py"
        )
    return found[0]


def load_policy(
    backend: str = "numpy",
    *,
    weights: str | os.PathLike[str] | None = None,
    monitoring: AIMonitoring | None = None,
    **options: Any,
) -> AIModelInterface:
    """The policy on ``numpy`` (no framework), ``torch`` or ``jax``: the shipped weights, or
    the ``save_mlp`` file ``weights``; options go to the interface (``device=``,
    ``compile=``, ``buckets=``...)."""
    path = policy_weights_path() if weights is None else pathlib.Path(weights)
    if backend == "numpy":
        return NumpyModelInterface(monitoring=monitoring, **options).load(path)
    if backend == "torch":
        from system0.interfaces.torch_model import TorchModelInterface

        return TorchModelInterface(monitoring=monitoring, **options).load(path)
    if backend == "jax":
        from system0.interfaces.jax_model import JaxModelInterface

        model = JaxModelInterface(monitoring=monitoring, **options).load(path)
        model.warmup()
        return model
    raise InvalidArgument(f"backend must be one of {BACKENDS}, got {backend!r}")
