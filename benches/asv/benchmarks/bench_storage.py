"""Storage: writes of 100 000 samples, and deterministic batches of 1 024 to a training loop.

The read figure the issue sets a goal for (>= 1 M samples/s from the analytical tier, no CI
gate) is ``DeterministicBatches``: open a reader pinned by (version, order key, seed, 1 024),
which loads and verifies every Parquet segment, orders the rows by the key and shuffles them by
the seed, then hand every batch to the loop, as Arrow batches or as numpy columns through the
background prefetcher. Run under asv (``cd benches/asv && asv run``) or directly
(``python benches/asv/benchmarks/bench_storage.py``) for samples/s.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from system0.data.storage import ScalableStorage
from system0.data.storage.schema import synthetic_samples

ROWS = 400_000
SEGMENT = 100_000
BATCH = 1024
ORDER = ("metadata.match_id", "metadata.step")


def _fill(root: Path) -> None:
    with ScalableStorage(root) as s:
        for i in range(ROWS // SEGMENT):
            s.commit(synthetic_samples(SEGMENT, seed=i, start_step=i * SEGMENT))
        s.tag("bench")


class DeterministicBatches:
    """All 400 000 rows (4 Parquet segments on the analytical tier) as batches of 1 024."""

    timeout = 300

    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="system0-bench-storage-"))
        _fill(self.dir / "root")
        self.storage = ScalableStorage(self.dir / "root")
        self.first = self.storage.reader(version="bench", order_by=ORDER, seed=0, batch_size=BATCH)
        self.first.table()
        self.epoch = 0

    def teardown(self) -> None:
        self.storage.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_arrow_batches_seeded(self) -> None:
        for _ in self.storage.reader(version="bench", order_by=ORDER, seed=1, batch_size=BATCH):
            pass

    def time_numpy_batches_prefetched(self) -> None:
        reader = self.storage.reader(version="bench", order_by=ORDER, seed=1, batch_size=BATCH)
        with reader.prefetch() as batches:
            for _ in batches:
                pass

    def time_next_epoch_arrow_batches(self) -> None:
        """A further epoch: rows already loaded and verified, new seed (shuffle + gather)."""
        self.epoch += 1
        for _ in self.first.with_seed(self.epoch):
            pass

    def time_arrow_batches_in_key_order(self) -> None:
        for _ in self.storage.reader(version="bench", order_by=ORDER, seed=None, batch_size=BATCH):
            pass


class Store:
    """One commit of 100 000 samples arriving as an Arrow table (the gate's operation)."""

    timeout = 300

    def setup(self) -> None:
        self.table = synthetic_samples(100_000, seed=7)
        self.dir = Path(tempfile.mkdtemp(prefix="system0-bench-store-"))
        self.i = 0

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_store_100k(self) -> None:
        self.i += 1
        with ScalableStorage(self.dir / str(self.i)) as s:
            s.commit(self.table)


def main() -> None:
    bench = DeterministicBatches()
    bench.setup()
    try:
        for name in (
            "time_arrow_batches_seeded",
            "time_numpy_batches_prefetched",
            "time_next_epoch_arrow_batches",
            "time_arrow_batches_in_key_order",
        ):
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                getattr(bench, name)()
                best = min(best, time.perf_counter() - t0)
            print(f"{name:<36} {ROWS / best / 1e6:6.2f} M samples/s  ({best * 1e3:.0f} ms)")
    finally:
        bench.teardown()


if __name__ == "__main__":
    main()
