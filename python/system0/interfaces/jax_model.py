"""``JaxModelInterface``: a jax function behind ``AIModelInterface``, with static shapes.

XLA compiles one program per input shape, so a batcher that emits every size from 1 to 64
would compile 64 programs and stall on each. Batches are padded up to a small set of bucket
sizes instead (1, 2, 4, ... by default): a handful of compiles, all done by ``warmup()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from system0.errors import InvalidArgument, ValidationError
from system0.interfaces.mlp_weights import MLPWeights, content_hash, load_mlp
from system0.interfaces.model_interface import AIModelInterface, ModelInfo, TensorSpec, mlp_info
from system0.interfaces.monitoring_hook import AIMonitoring
from system0.utils import jax_utils

__all__ = ["JaxModelInterface", "mlp_fn"]

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def mlp_fn(
    mlp: MLPWeights, precision: str = "highest"
) -> tuple[Callable[[Any, Any], Any], dict[str, Any]]:
    """``(fn(params, x), params)`` computing the same function as ``NumpyModelInterface``.

    ``precision`` is the matmul precision: ``highest`` (full float32, the default, so every
    backend picks the same actions), ``high`` or ``default`` (on a GPU, TF32: faster, and
    about 1e-3 off float32)."""
    if precision not in jax_utils.PRECISIONS:
        raise InvalidArgument(f"precision must be one of {jax_utils.PRECISIONS}, got {precision!r}")
    jax = jax_utils.require_jax()
    jnp = jax.numpy
    act = jax.nn.relu if mlp.activation == "relu" else jnp.tanh
    clip = float(mlp.clip)
    params = {
        "mean": jnp.asarray(mlp.mean),
        "inv_std": jnp.asarray(1.0 / mlp.std),
        "w": [jnp.asarray(w.T) for w in mlp.weights],
        "b": [jnp.asarray(b) for b in mlp.biases],
    }

    def fn(p: Any, x: Any) -> Any:
        h = jnp.clip((x - p["mean"]) * p["inv_std"], -clip, clip)
        last = len(p["w"]) - 1
        for i, (w, b) in enumerate(zip(p["w"], p["b"], strict=True)):
            h = jnp.matmul(h, w, precision=precision) + b
            if i < last:
                h = act(h)
        return jax.nn.softmax(h, axis=-1)

    return fn, params


class JaxModelInterface(AIModelInterface):
    """``fn(params, x)`` jitted, run on batches padded to ``buckets``.

    Load an MLP file (``load(path)``) or give ``fn``, ``params``, ``input_shape`` and
    ``output_shape`` for any other model. Batches above the largest bucket are split.
    ``precision`` is the loaded MLP's matmul precision (see :func:`mlp_fn`; default full
    float32: on a GPU, XLA's own default is TF32, which can change the chosen action).
    """

    backend = "jax"

    def __init__(
        self,
        fn: Callable[[Any, Any], Any] | None = None,
        params: Any = None,
        *,
        buckets: Sequence[int] = DEFAULT_BUCKETS,
        input_shape: tuple[int] | None = None,
        output_shape: tuple[int] | None = None,
        name: str = "policy",
        monitoring: AIMonitoring | None = None,
        precision: str = "highest",
    ) -> None:
        super().__init__(name=name, monitoring=monitoring)
        self._jax = jax_utils.require_jax()
        if precision not in jax_utils.PRECISIONS:
            raise InvalidArgument(
                f"precision must be one of {jax_utils.PRECISIONS}, got {precision!r}"
            )
        self.precision = precision
        self.buckets = tuple(sorted(set(buckets)))
        if not self.buckets or self.buckets[0] < 1 or self.buckets[-1] > 65536:
            raise InvalidArgument(f"buckets must be sizes in [1, 65536], got {tuple(buckets)}")
        self._mlp: MLPWeights | None = None
        self._in, self._out = input_shape, output_shape
        self._fn: Any = None
        self._params: Any = None
        self._hash = ""
        self.compiled_shapes: set[int] = set()
        if fn is not None:
            if input_shape is None or output_shape is None:
                raise InvalidArgument("a plain function needs input_shape= and output_shape=")
            self._set(fn, params)

    def _set(self, fn: Callable[[Any, Any], Any], params: Any) -> None:
        jax = self._jax
        self._fn = jax.jit(fn)
        self._params = params
        leaves = jax.tree_util.tree_leaves(params)
        if not self._hash:
            self._hash = content_hash({str(i): np.asarray(a) for i, a in enumerate(leaves)})
        assert self._in is not None
        self._features = self._in[0]
        self.compiled_shapes.clear()

    def load(self, source: Any) -> Self:
        mlp = source if isinstance(source, MLPWeights) else load_mlp(source)
        self._mlp = mlp
        self._in, self._out = (mlp.in_features,), (mlp.out_features,)
        self._hash = mlp.content_hash()
        fn, params = mlp_fn(mlp, self.precision)
        self._set(fn, params)
        return self

    def warmup(self) -> None:
        """Compile every bucket now, so no request pays for a compile."""
        for b in self.buckets:
            self._forward(np.zeros((b, self.num_features), np.float32))

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        if self._fn is None:
            raise ValidationError(f"{self.name}: no model loaded; call load(...) first")
        top = self.buckets[-1]
        if x.shape[0] > top:
            parts = [self._forward(x[i : i + top]) for i in range(0, x.shape[0], top)]
            return np.concatenate(parts)
        rows = x.shape[0]
        size = jax_utils.bucket_for(rows, self.buckets)
        if size != rows:
            padded = np.zeros((size, x.shape[1]), np.float32)
            padded[:rows] = x
            x = padded
        self.compiled_shapes.add(size)
        out = self._fn(self._params, x)
        return np.asarray(out)[:rows]

    def introspect(self) -> ModelInfo:
        device = str(self._jax.devices()[0])
        if self._mlp is not None:
            return mlp_info(self._mlp, self.name, self.backend, device, "float32", self._hash)
        if self._in is None or self._out is None:
            raise ValidationError(f"{self.name}: no model loaded; call load(...) first")
        leaves = self._jax.tree_util.tree_leaves(self._params)
        return ModelInfo(
            name=self.name,
            backend=self.backend,
            inputs=(TensorSpec("input", (None, *self._in)),),
            outputs=(TensorSpec("output", (None, *self._out)),),
            parameter_count=int(sum(np.asarray(a).size for a in leaves)),
            dtype="float32",
            device=device,
            content_hash=self._hash,
        )
