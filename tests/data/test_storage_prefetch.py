"""Background prefetch: bounded memory, errors surface, close stops the producer; batches come
out as numpy columns (or torch tensors) without per-row work."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from system0.data.storage import ScalableStorage
from system0.data.storage.prefetch import Prefetcher, to_numpy
from system0.data.storage.schema import synthetic_samples
from system0.errors import Closed, ValidationError


def _batches(k: int, rows: int = 1000) -> Iterator[pa.RecordBatch]:
    for i in range(k):
        yield pa.record_batch({"x": np.full(rows, i, dtype=np.float64)})


def test_buffer_never_exceeds_its_batch_bound() -> None:
    with Prefetcher(_batches(50), lambda b: b, max_batches=3) as p:
        time.sleep(0.2)  # let the producer run ahead as far as it may
        assert p.peak_batches == 3
        got = [int(b.column(0)[0].as_py()) for b in p]
    assert got == list(range(50))
    assert p.peak_batches <= 3


def test_buffer_never_exceeds_its_byte_bound() -> None:
    size = pa.record_batch({"x": np.zeros(1000)}).nbytes
    with Prefetcher(_batches(20), lambda b: b, max_batches=100, max_bytes=int(size * 2.5)) as p:
        time.sleep(0.2)
        assert p.peak_bytes <= size * 2.5
        assert len(list(p)) == 20


def test_a_batch_larger_than_the_byte_bound_still_passes_alone() -> None:
    with Prefetcher(_batches(3, rows=10_000), lambda b: b, max_bytes=10) as p:
        assert len(list(p)) == 3
        assert p.peak_batches == 1


def test_producer_errors_reach_the_consumer() -> None:
    def broken() -> Iterator[pa.RecordBatch]:
        yield from _batches(2)
        raise OSError("disk went away")

    p = Prefetcher(broken(), lambda b: b)
    assert len([next(p), next(p)]) == 2
    with pytest.raises(OSError, match="disk went away"):
        next(p)


def test_close_stops_the_producer_thread() -> None:
    p = Prefetcher(_batches(10_000), lambda b: b, max_batches=2)
    next(p)
    p.close()
    assert not any(t.name == "system0-prefetch" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(Closed):
        next(p)


def test_bounds_are_validated() -> None:
    with pytest.raises(ValidationError):
        Prefetcher(_batches(1), lambda b: b, max_batches=0)


def test_to_numpy_flattens_structs_into_typed_columns() -> None:
    t = synthetic_samples(64)
    cols = to_numpy(t)
    assert cols["reward"].dtype == np.float64 and cols["reward"].shape == (64,)
    assert cols["state.health"].dtype == np.float64
    assert cols["metadata.step"].dtype == np.int32
    assert cols["state.timestamp"].dtype == np.int64
    assert "state.champion" not in cols  # strings are not tensors
    np.testing.assert_array_equal(cols["reward"], t.column("reward").to_numpy())


def test_reader_prefetch_yields_the_pinned_batches(tmp_path: Path) -> None:
    with ScalableStorage(tmp_path / "r") as s:
        s.commit(synthetic_samples(2500))
        r = s.reader(seed=3, batch_size=1000)
        expected = [to_numpy(b)["reward"] for b in r]
        with r.prefetch(max_batches=2) as p:
            got = [b["reward"] for b in p]
    assert [len(g) for g in got] == [1000, 1000, 500]
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_torch_batches_share_memory_with_numpy(tmp_path: Path) -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (pip install system0[torch])"
    )
    from system0.data.storage.prefetch import to_torch

    batch = synthetic_samples(16).to_batches()[0]
    tensors = to_torch(batch)
    assert tensors["reward"].dtype == torch.float64 and tensors["reward"].shape == (16,)


def test_a_torch_dataloader_takes_the_prefetched_batches(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed (pip install system0[torch])")
    from torch.utils.data import DataLoader

    from system0.data.storage.prefetch import to_torch, torch_dataset

    with ScalableStorage(tmp_path / "r") as s:
        s.commit(synthetic_samples(300))
        r = s.reader(seed=2, batch_size=128)
        loader = DataLoader(torch_dataset(lambda: r.prefetch(to_torch)), batch_size=None)
        sizes = [int(b["reward"].shape[0]) for b in loader]
    assert sizes == [128, 128, 44]
