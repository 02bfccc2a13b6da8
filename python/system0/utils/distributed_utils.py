"""Process groups for multi-process work: torch.distributed (gloo on CPU, NCCL on GPU), and
Ray start-up helpers when Ray is installed.

:func:`init_process_group` picks the backend from the hardware (NCCL needs one GPU per rank;
gloo runs anywhere), reads rank and world size from the arguments or the usual ``RANK`` /
``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT`` variables, and binds each rank to its GPU
before NCCL starts (a rank that touches the wrong device first makes NCCL hang or build a
communicator on the wrong card). :func:`process_group` is the same as a context manager that
tears the group down again.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from system0.errors import ConfigError, InvalidArgument
from system0.utils.torch_utils import require_torch

__all__ = [
    "DistInfo",
    "free_port",
    "init_process_group",
    "process_group",
    "ray_available",
    "start_ray",
]


@dataclass(frozen=True, slots=True)
class DistInfo:
    rank: int
    world_size: int
    backend: str
    device: str


def free_port() -> int:
    """A TCP port free on the loopback interface now (for a single-host rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env_int(name: str, given: int | None) -> int:
    if given is not None:
        return given
    raw = os.environ.get(name)
    if raw is None:
        raise ConfigError(f"{name} is not set; pass it as an argument or set the variable")
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not an integer") from exc


def init_process_group(
    rank: int | None = None,
    world_size: int | None = None,
    *,
    backend: str = "auto",
    master_addr: str | None = None,
    master_port: int | None = None,
    timeout_s: float = 60.0,
) -> DistInfo:
    """Join (or form) the default process group; returns who this process is in it.

    ``backend``: ``"auto"`` (NCCL when CUDA is available, else gloo), ``"gloo"`` or
    ``"nccl"``. The rendezvous is TCP at ``master_addr:master_port``.
    """
    torch = require_torch()
    dist = torch.distributed
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed")
    r, n = _env_int("RANK", rank), _env_int("WORLD_SIZE", world_size)
    if n < 1 or not 0 <= r < n:
        raise InvalidArgument(f"rank {r} is outside world size {n}")
    cuda = bool(torch.cuda.is_available())
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    if backend not in ("gloo", "nccl"):
        raise InvalidArgument(f"backend must be 'auto', 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl" and not cuda:
        raise RuntimeError("NCCL needs CUDA devices; none is available (use backend='gloo')")
    addr = master_addr or os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = master_port if master_port is not None else _env_int("MASTER_PORT", None)
    device = "cpu"
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", r)) % torch.cuda.device_count()
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group(
        backend=backend,
        init_method=f"tcp://{addr}:{port}",
        rank=r,
        world_size=n,
        timeout=timedelta(seconds=timeout_s),
    )
    return DistInfo(r, n, backend, device)


@contextmanager
def process_group(*args: Any, **kwargs: Any) -> Iterator[DistInfo]:
    """``with process_group(rank, world) as info:`` — init, then destroy on exit."""
    info = init_process_group(*args, **kwargs)
    try:
        yield info
    finally:
        require_torch().distributed.destroy_process_group()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def start_ray(
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    *,
    address: str | None = None,
    namespace: str = "system0",
    **kwargs: Any,
) -> Any:
    """Start (or connect to, with ``address``) Ray, idempotently; returns Ray's context.

    Ray is optional: this raises ``ImportError`` with the install line when it is absent.
    Local start-up keeps the dashboard off (it is a web server the hot path does not need).
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError("this needs ray; install it with pip install 'ray[default]'") from exc
    if ray.is_initialized():
        return ray.get_runtime_context()
    opts: dict[str, Any] = {"namespace": namespace, "include_dashboard": False, **kwargs}
    if address is not None:
        opts["address"] = address
    else:
        opts.update(num_cpus=num_cpus, num_gpus=num_gpus)
    ray.init(**opts)
    return ray.get_runtime_context()
