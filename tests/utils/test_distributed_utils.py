"""torch.distributed with gloo across two real processes; Ray only where installed."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from system0.utils import distributed_utils as du


def _worker(rank: int, world: int, port: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import torch

    with du.process_group(rank, world, backend="gloo", master_port=port, timeout_s=60) as info:
        t = torch.tensor([float(rank + 1)])
        torch.distributed.all_reduce(t)
        gathered = [torch.zeros(1) for _ in range(world)]
        torch.distributed.all_gather(gathered, torch.tensor([float(rank * 10)]))
        out.put((info.rank, info.backend, float(t.item()), [float(g.item()) for g in gathered]))


def test_gloo_all_reduce_across_two_processes() -> None:
    pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
    ctx = mp.get_context("spawn")  # a fresh interpreter per rank, as a launcher would start
    out = ctx.Queue()
    port = du.free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results == [(0, "gloo", 3.0, [0.0, 10.0]), (1, "gloo", 3.0, [0.0, 10.0])]


def test_bad_rank_and_backend_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
    with pytest.raises(ValueError, match="outside world size"):
        du.init_process_group(2, 2, master_port=1)
    with pytest.raises(ValueError, match="backend"):
        du.init_process_group(0, 1, backend="mpi", master_port=1)
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ValueError, match="RANK is not set"):
        du.init_process_group(None, 1, master_port=1)


def test_nccl_without_gpu_says_so() -> None:
    torch = pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: NCCL would start")
    with pytest.raises(RuntimeError, match="NCCL needs CUDA"):
        du.init_process_group(0, 1, backend="nccl", master_port=1)


def test_ray_starts_when_installed() -> None:
    if not du.ray_available():
        with pytest.raises(ImportError, match="ray"):
            du.start_ray()
        pytest.skip("ray is not installed (optional): start_ray raises ImportError as tested")
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    ctx = du.start_ray(num_cpus=1)
    assert ctx is not None
