"""A writer killed (SIGKILL) in the middle of commits leaves no partial version, loses nothing
it acknowledged, and the next process reads and verifies every version that exists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from system0.data.storage import ScalableStorage

WRITER = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    from system0.data.storage import ScalableStorage
    from system0.data.storage.policy import StoragePolicy
    from system0.data.storage.schema import synthetic_samples

    root, rows = sys.argv[1], int(sys.argv[2])
    # alternate tiers: small batches go to SQLite, large ones to Parquet files
    s = ScalableStorage(root, policy=StoragePolicy(hot_max_rows=rows + 1))
    # batches are made up front so that the writer spends its time inside commit()
    batches = [synthetic_samples(rows * (1 + i % 2), seed=i, start_step=i * rows * 2)
               for i in range(8)]
    i = 0
    while True:
        b = batches[i % 8]
        if i >= 8:  # fresh content (new segment ids) without generating anew
            reward = pa.field("reward", pa.float64(), nullable=False)
            b = b.set_column(2, reward, pa.array(b.column("reward").to_numpy() + i))
        s.commit(b)
        print(f"acked {b.num_rows}", flush=True)
        i += 1
    """
)


def _run_and_kill(root: Path, rows: int, delay_s: float) -> int:
    """Start a writer, kill it with SIGKILL after ``delay_s``; returns the rows it acked."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(rows)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # at least one commit done, imports warm
    assert first.startswith("acked"), first
    time.sleep(delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    lines = [first, *rest.splitlines()]
    return sum(int(line.split()[1]) for line in lines if line.startswith("acked"))


@pytest.mark.parametrize("delay_s", [0.05, 0.07, 0.13, 0.2, 0.31])
def test_sigkill_during_commits_leaves_only_whole_versions(tmp_path: Path, delay_s: float) -> None:
    root = tmp_path / "root"
    acked = _run_and_kill(root, 3000, delay_s)
    with ScalableStorage(root) as s:
        versions = s.versions()
        head = versions[-1]
        # every acknowledged sample is there; at most one more commit landed unacknowledged
        assert head.rows >= acked
        assert head.rows - acked in (0, 3000, 6000)
        # each version is whole: its rows add up and every byte verifies
        for v in versions:
            assert s.read(version=v.id).num_rows == v.rows
        report = s.verify()
        assert report.versions == len(versions)
        # what the killed writer left half-done is unreferenced, and gc removes it
        s.gc(grace_s=0)
        referenced = {p.blob for p in s.catalog.placements("samples")}
        for tier, backend in s.backends.items():
            assert set(backend.list("samples")) <= referenced, tier
        parquet_dir = root / "parquet" / "samples"
        assert not list(parquet_dir.glob("*.tmp"))


PAUSED_WRITER = textwrap.dedent(
    """
    import sys, time
    from system0.data.storage import ScalableStorage
    from system0.data.storage.policy import StoragePolicy
    from system0.data.storage.schema import synthetic_samples

    root, rows = sys.argv[1], int(sys.argv[2])
    s = ScalableStorage(root, policy=StoragePolicy(hot_max_rows=1000))
    s.commit(synthetic_samples(10))
    real_commit = s.catalog.commit

    def paused(*args, **kwargs):
        # the segment is durable in its tier; the catalog has not committed: die here
        print("segment durable", flush=True)
        time.sleep(60)
        return real_commit(*args, **kwargs)

    s.catalog.commit = paused
    s.commit(synthetic_samples(rows, seed=1, start_step=10))
    """
)


@pytest.mark.parametrize("rows", [100, 5000])  # the SQLite tier and the Parquet tier
def test_killed_between_segment_write_and_catalog_commit(tmp_path: Path, rows: int) -> None:
    root = tmp_path / "root"
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_WRITER, str(root), str(rows)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "segment durable"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with ScalableStorage(root) as s:
        assert [v.rows for v in s.versions()] == [10]  # no partial commit
        tier = "local" if rows < 1000 else "analytical"
        stored = s.backends[tier].list("samples")
        referenced = {p.blob for p in s.catalog.placements("samples")}
        orphans = set(stored) - referenced
        assert len(orphans) == 1  # the segment that never committed
        assert s.gc() == 0  # a writer announced it within the grace period: kept for now
        assert s.gc(grace_s=0) == 1
        assert set(s.backends[tier].list("samples")) <= referenced
        s.verify()
        assert s.read().num_rows == 10


def test_a_version_being_committed_is_invisible_until_done(tmp_path: Path) -> None:
    """The catalog commit is one SQLite transaction: hold it open in another process and the
    new version is not visible; kill that process and it never appears."""
    root = tmp_path / "root"
    with ScalableStorage(root) as s:
        from system0.data.storage.schema import synthetic_samples

        s.commit(synthetic_samples(10))
    holder = textwrap.dedent(
        """
        import sqlite3, sys, time
        db = sqlite3.connect(sys.argv[1], isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO versions VALUES ('samples', 2, 'x' , NULL, '{}', '', 0)")
        print("holding", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(root / "catalog.sqlite")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    try:
        with ScalableStorage(root) as s:
            assert [v.seq for v in s.versions()] == [1]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with ScalableStorage(root) as s:
        assert [v.seq for v in s.versions()] == [1]
        s.verify()
