"""``AIModelInterface``: one way to load, run and describe a model, whatever its framework.

Every interface takes a float32 batch (numpy, rows first) and returns numpy, so the engine and
the data pipeline never care which framework runs underneath. Each call goes through
:class:`~system0.interfaces.monitoring_hook.AIMonitoring` (pre and post hooks) and is timed on
the process clock. ``introspect()`` describes the model: input and output specs, parameter
count, dtype, device, and the content hash of the weights, which names the artifact.

``NumpyModelInterface`` runs a multilayer perceptron stored as safetensors (``mlp_weights``,
re-exported here) with numpy alone, so the demo works on the light install;
``TorchModelInterface`` (``torch_model``) and ``JaxModelInterface`` (``jax_model``), both
exported by ``system0.interfaces`` and loading their frameworks only when constructed, run the
same weights.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from system0 import _core
from system0.errors import ValidationError
from system0.interfaces.mlp_weights import MLPWeights, check_mlp, content_hash, load_mlp, save_mlp
from system0.interfaces.monitoring_hook import AIMonitoring, InferenceEvent

__all__ = [
    "AIModelInterface",
    "MLPWeights",
    "ModelInfo",
    "NumpyModelInterface",
    "TensorSpec",
    "content_hash",
    "load_mlp",
    "mlp_info",
    "save_mlp",
    "softmax",
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
        check_mlp(mlp, self.name)
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
