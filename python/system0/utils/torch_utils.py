"""torch helpers for the hot path: pinned host buffers, CUDA graphs, a compile switch, and
deterministic mode. torch is imported lazily, so importing this module costs nothing on the
light install; each helper raises ``ImportError`` with the install line when torch is absent.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from system0.errors import InvalidArgument

if TYPE_CHECKING:
    import torch

__all__ = [
    "CUDAGraphRunner",
    "PinnedBufferPool",
    "compile_enabled",
    "maybe_compile",
    "require_torch",
    "set_deterministic",
]

INSTALL = "pip install 'system0[torch]'"


def require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised on the light install
        raise ImportError(f"this needs torch; install it with {INSTALL}") from exc
    return torch


class PinnedBufferPool:
    """Reusable page-locked host tensors, keyed by shape and dtype.

    A host-to-device copy from pinned memory can be ``non_blocking`` (DMA, overlapping with
    compute); from pageable memory it is staged through a hidden pinned buffer. Allocating
    pinned memory is slow (a syscall and page locking), so buffers are kept and handed out
    again. Without CUDA, buffers are ordinary tensors (pinning needs a CUDA driver).
    """

    def __init__(self, max_per_key: int = 4) -> None:
        self._torch = require_torch()
        self._pin = bool(self._torch.cuda.is_available())
        self._free: dict[tuple[tuple[int, ...], Any], list[torch.Tensor]] = {}
        self._lock = threading.Lock()
        self.max_per_key = max_per_key
        self.allocations = 0

    @property
    def pinned(self) -> bool:
        return self._pin

    def acquire(self, shape: tuple[int, ...], dtype: Any = None) -> torch.Tensor:
        t = self._torch
        dtype = dtype if dtype is not None else t.float32
        with self._lock:
            free = self._free.get((shape, dtype))
            if free:
                return free.pop()
        self.allocations += 1
        return t.empty(shape, dtype=dtype, pin_memory=self._pin)

    def release(self, buf: torch.Tensor) -> None:
        key = (tuple(buf.shape), buf.dtype)
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self.max_per_key:
                free.append(buf)


class CUDAGraphRunner:
    """Replays a module captured as one CUDA graph per fixed batch size, host copies included.

    Capturing removes the per-kernel launch cost (tens of microseconds for a small model),
    which dominates a batch-1 call. Each graph holds the host -> device copy from a
    page-locked buffer, the model and the device -> host copy into another, so ``run_host``
    is one numpy copy in, one replay, one wait and one copy out; smaller batches are padded
    up to the nearest captured size, larger ones refused (``None``: run them eagerly). Replays
    are serialized by a lock (threads share the static buffers). GPU only.
    """

    def __init__(
        self,
        module: Callable[[torch.Tensor], torch.Tensor],
        sizes: Iterable[int],
        features: int,
        device: Any,
        warmup: int = 3,
    ) -> None:
        t = require_torch()
        if not t.cuda.is_available():
            raise RuntimeError("CUDA graphs need a CUDA device; none is available")
        self._torch = t
        self._lock = threading.Lock()
        self._host: dict[int, tuple[Any, Any, Any, Any]] = {}  # size -> graph, in, out, done
        self._keep: list[torch.Tensor] = []  # tensors the graphs read and write
        stream = t.cuda.Stream()
        stream.wait_stream(t.cuda.current_stream())
        with t.inference_mode():
            for n in sorted(set(sizes)):
                if n < 1:
                    raise InvalidArgument(f"CUDA graph batch sizes must be >= 1, got {n}")
                dev_in = t.zeros((n, features), device=device)
                with t.cuda.stream(stream):
                    for _ in range(warmup):  # lazy init and autotuning outside the capture
                        probe = module(dev_in)
                t.cuda.current_stream().wait_stream(stream)
                # page-locked buffers: a graph can only copy from and to memory that the DMA
                # engine can reach
                host_in = t.zeros((n, features), pin_memory=True)
                host_out = t.empty(probe.shape, dtype=probe.dtype, pin_memory=True)
                graph = t.cuda.CUDAGraph()
                done = _external_event(t)
                with t.cuda.graph(graph):
                    dev_in.copy_(host_in, non_blocking=True)
                    host_out.copy_(module(dev_in), non_blocking=True)
                    if done is not None:
                        done.record()
                self._host[n] = (graph, host_in.numpy(), host_out.numpy(), done)
                self._keep += [host_in, host_out, dev_in]
        self._host_sizes = tuple(sorted(self._host))

    @property
    def sizes(self) -> tuple[int, ...]:
        return self._host_sizes

    def run_host(self, x: Any) -> Any:
        """Run a numpy batch (rows, features) through the captured graph of the smallest
        size that holds it; returns a new numpy array of the first ``rows`` outputs, or
        ``None`` when the batch is larger than every captured size."""
        rows = x.shape[0]
        i = bisect.bisect_left(self._host_sizes, rows)
        if i == len(self._host_sizes):
            return None
        size = self._host_sizes[i]
        graph, host_in, host_out, done = self._host[size]
        with self._lock:
            host_in[:rows] = x
            if rows < size:
                host_in[rows:] = 0.0
            graph.replay()
            if done is not None:
                done.synchronize()  # the graph's own last node: whatever stream it ran on
            else:
                self._torch.cuda.current_stream().synchronize()
            return host_out[:rows].copy()


def _external_event(t: Any) -> Any:
    """An event that, recorded inside a graph capture, becomes a node of the graph: waiting
    on it waits for that graph's replay. Looking up the current stream to synchronize costs
    ~8 us in torch's Python layer (measured on an H100 host), more than the replay itself.
    None where this torch has no external events."""
    try:
        return t.cuda.Event(external=True)
    except TypeError:
        return None


def compile_enabled(requested: bool) -> bool:
    """``torch.compile`` is used when requested and not vetoed by ``SYSTEM0_TORCH_COMPILE=0``."""
    return requested and os.environ.get("SYSTEM0_TORCH_COMPILE", "1") != "0"


def maybe_compile(module: Any, enabled: bool, mode: str = "reduce-overhead") -> Any:
    """``torch.compile(module, mode=mode)`` when enabled (see :func:`compile_enabled`)."""
    if not compile_enabled(enabled):
        return module
    t = require_torch()
    return t.compile(module, mode=mode, dynamic=False)


def set_deterministic(seed: int = 0) -> None:
    """Make torch reproducible: seeded RNGs, deterministic algorithms, no cuDNN autotuning.

    Process-wide (torch's switches are global) and slower; opt in when bit-exact replays
    matter more than speed.
    """
    t = require_torch()
    # cuBLAS needs a fixed workspace to be deterministic; must be set before its first use.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    t.manual_seed(seed)
    t.use_deterministic_algorithms(True)
    t.backends.cudnn.benchmark = False
    t.backends.cudnn.deterministic = True
