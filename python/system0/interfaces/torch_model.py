"""``TorchModelInterface``: a torch module behind ``AIModelInterface``.

The module runs in eval mode under ``torch.inference_mode`` on its device (``"auto"`` picks
CUDA when present). On a GPU, batches go host -> device from a pinned buffer with
``non_blocking`` copies, fixed batch sizes can run as CUDA graphs (smaller batches are padded
up to the nearest captured size), and the policy head runs as one fused Triton kernel. On the
CPU the same module runs in plain torch. ``torch.compile`` and deterministic mode are opt-in.
torch is imported when an interface is constructed, never at module import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from system0.errors import InvalidArgument, ValidationError
from system0.interfaces.mlp_weights import MLPWeights, content_hash, load_mlp
from system0.interfaces.model_interface import AIModelInterface, ModelInfo, TensorSpec, mlp_info
from system0.interfaces.monitoring_hook import AIMonitoring
from system0.utils import torch_utils

__all__ = ["TorchModelInterface", "build_torch_mlp"]


def build_torch_mlp(mlp: MLPWeights, device: Any = "cpu", fused_head: bool | None = None) -> Any:
    """An ``nn.Module`` computing the same function as ``NumpyModelInterface`` on ``mlp``.

    ``fused_head`` (default: on CUDA when triton imports) runs the normalization as the Triton
    kernel ``kernels.normalize`` and the last linear layer, softmax and argmax as the fused
    head kernel; otherwise (the CPU) the torch reference runs.
    """
    torch = torch_utils.require_torch()
    nn = torch.nn
    base: Any = nn.Module

    class PolicyMLP(base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.from_numpy(mlp.mean.copy()))
            self.register_buffer("inv_std", torch.from_numpy((1.0 / mlp.std).astype(np.float32)))
            self.register_buffer("ones", torch.ones(mlp.mean.shape[0]))
            self.clip = float(mlp.clip)
            self.layers = nn.ModuleList()
            for w, b in zip(mlp.weights, mlp.biases, strict=True):
                lin = nn.Linear(w.shape[1], w.shape[0])
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(w))
                    lin.bias.copy_(torch.from_numpy(b))
                self.layers.append(lin)
            self.act = torch.relu if mlp.activation == "relu" else torch.tanh
            self.fused = False

        def forward(self, x: Any) -> Any:
            if self.fused:
                from system0.kernels.normalize import normalize

                rows, cols = x.shape
                # the row-major batch read as columns through its strides: one kernel
                h = normalize(x.T, self.ones, self.mean, self.inv_std, self.clip, rows, cols)
            else:
                h = ((x - self.mean) * self.inv_std).clamp(-self.clip, self.clip)
            for lin in self.layers[:-1]:
                h = self.act(lin(h))
            last = self.layers[-1]
            if self.fused:
                from system0.kernels.policy_head import policy_head

                probs, _ = policy_head(h, last.weight, last.bias, activation="none")
                return probs
            return torch.softmax(last(h), dim=-1)

    module = PolicyMLP().to(device).eval()
    on_cuda = torch.device(device).type == "cuda"
    if fused_head is None:
        fused_head = on_cuda and _triton_available()
    module.fused = bool(fused_head)
    return module


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class TorchModelInterface(AIModelInterface):
    """A torch module as a model interface; returns numpy outputs of shape (rows, outputs).

    Parameters: ``device`` (``"auto"``, ``"cpu"``, ``"cuda:0"`` ...), ``compile`` (wrap in
    ``torch.compile``), ``cuda_graph_batch_sizes`` (capture a graph per size, GPU only; an
    empty tuple disables graphs), ``deterministic`` (see ``torch_utils.set_deterministic``),
    ``input_shape``/``output_shape`` (per row, needed for a module not built from an MLP).
    """

    backend = "torch"

    def __init__(
        self,
        module: Any = None,
        *,
        device: str = "auto",
        compile: bool = False,
        cuda_graph_batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
        deterministic: bool = False,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        name: str = "policy",
        monitoring: AIMonitoring | None = None,
    ) -> None:
        super().__init__(name=name, monitoring=monitoring)
        self._torch = torch = torch_utils.require_torch()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.compile = compile
        self.graph_sizes = tuple(sorted(set(cuda_graph_batch_sizes)))
        if any(n < 1 for n in self.graph_sizes):
            raise InvalidArgument(f"cuda_graph_batch_sizes must be >= 1, got {self.graph_sizes}")
        self.deterministic = deterministic
        if deterministic:
            torch_utils.set_deterministic()
        self._in_shape = input_shape
        self._out_shape = output_shape
        self._mlp: MLPWeights | None = None
        self._module: Any = None
        self._runner: Any = None
        self._pool: torch_utils.PinnedBufferPool | None = None
        self._hash = ""
        if module is not None:
            self.load(module)

    def load(self, source: Any) -> Self:
        torch = self._torch
        if isinstance(source, MLPWeights) or not isinstance(source, torch.nn.Module):
            mlp = source if isinstance(source, MLPWeights) else load_mlp(source)
            self._mlp = mlp
            self._in_shape, self._out_shape = (mlp.in_features,), (mlp.out_features,)
            module = build_torch_mlp(mlp, self.device)
            self._hash = mlp.content_hash()
        else:
            if self._in_shape is None or self._out_shape is None:
                raise InvalidArgument("a plain nn.Module needs input_shape= and output_shape=")
            module = source.to(self.device).eval()
            state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
            self._hash = content_hash(state)
        self._features = self._in_shape[-1] if len(self._in_shape) == 1 else None
        # reduce-overhead means CUDA graphs: only meaningful (and quiet) on a GPU
        mode = "reduce-overhead" if self.device.type == "cuda" else "default"
        self._module = torch_utils.maybe_compile(module, self.compile, mode)
        self._runner = None
        if self.device.type == "cuda":
            self._pool = torch_utils.PinnedBufferPool()
            if self.graph_sizes and not self.compile:
                self._runner = torch_utils.CUDAGraphRunner(
                    self._module, self.graph_sizes, self._in_shape[-1], self.device
                )
        return self

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        torch = self._torch
        if self._module is None:
            raise ValidationError(f"{self.name}: no model loaded; call load(...) first")
        if self._runner is not None:
            # copies and model in one captured graph (padded up to the captured size); a
            # replay records no autograd state, so it needs no inference_mode around it
            answer: npt.NDArray[Any] | None = self._runner.run_host(x)
            if answer is not None:
                return answer
        with torch.inference_mode():
            if self.device.type != "cuda":
                return np.asarray(self._module(torch.from_numpy(x)).numpy())
            return self._forward_cuda(x)

    def _forward_cuda(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        torch = self._torch
        assert self._pool is not None
        rows = x.shape[0]
        host_in = self._pool.acquire((rows, x.shape[1]))
        try:
            host_in.numpy()[:] = x
            dev_in = host_in.to(self.device, non_blocking=True)
            out = self._module(dev_in)
            host_out = self._pool.acquire(tuple(out.shape))
            host_out.copy_(out, non_blocking=True)
            torch.cuda.current_stream().synchronize()
            result: npt.NDArray[Any] = host_out.numpy().copy()
            self._pool.release(host_out)
            return result
        finally:
            self._pool.release(host_in)

    def introspect(self) -> ModelInfo:
        dtype = "float32"
        if self._mlp is not None:
            return mlp_info(self._mlp, self.name, self.backend, str(self.device), dtype, self._hash)
        if self._module is None or self._in_shape is None or self._out_shape is None:
            raise ValidationError(f"{self.name}: no model loaded; call load(...) first")
        params = sum(p.numel() for p in self._module.parameters())
        return ModelInfo(
            name=self.name,
            backend=self.backend,
            inputs=(TensorSpec("input", (None, *self._in_shape)),),
            outputs=(TensorSpec("output", (None, *self._out_shape)),),
            parameter_count=int(params),
            dtype=dtype,
            device=str(self.device),
            content_hash=self._hash,
        )
