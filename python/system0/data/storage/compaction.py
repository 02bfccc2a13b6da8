"""Compaction: hot segments age out of the local tier into one Parquet file on the analytical one.

A hot segment is *cold* once it is older than ``hot_max_age_s`` and has not been read
``hot_min_reads`` times within that window. Cold segments of one schema are concatenated (in
commit order) into one merged blob, written durably to the analytical tier; then, in one catalog
transaction, each segment's placement points into that blob (at its row offset) and its local
placement is dropped; only then are local blobs that nothing references any more deleted.
Manifests are untouched, so no version changes its name, and a crash at any step leaves every
version readable (at worst a merged blob nothing references yet, which ``gc`` removes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from system0.data.storage.blobs import BlobStore
from system0.data.storage.policy import StoragePolicy
from system0.data.storage.segments import decode_segment, encode_segment, sha256
from system0.data.storage.versions import Placement
from system0.errors import NotFound, ValidationError


@dataclass(frozen=True)
class CompactionReport:
    """One pass over ``dataset``: how many hot segments and rows moved, into which blob."""

    dataset: str
    segments: int
    rows: int
    blob: str | None


def _is_cold(p: Placement, now_ns: int, max_age_ns: int, min_reads: int) -> bool:
    old = now_ns - p.created_ns >= max_age_ns
    recently_busy = p.reads >= min_reads and now_ns - p.last_read_ns < max_age_ns
    return old and not recently_busy


def compact(
    blobs: BlobStore,
    policy: StoragePolicy,
    dataset: str,
    *,
    force: bool = False,
    now_ns: int | None = None,
) -> CompactionReport:
    """Move ``dataset``'s cold hot segments (all of them with ``force``) to the analytical tier."""
    catalog = blobs.catalog
    now = time.time_ns() if now_ns is None else now_ns
    max_age = int(policy.hot_max_age_s * 1e9)
    placed = catalog.placements(dataset)
    on_analytical = {p.segment for p in placed if p.backend == "analytical"}
    # commit order: the order in which segments first appear across the dataset's versions
    order: dict[str, int] = {}
    for v in catalog.versions(dataset):
        for s in v.manifest.segments:
            order.setdefault(s.id, len(order))
    cold = sorted(
        (
            p
            for p in placed
            if p.backend == "local"
            and p.segment not in on_analytical
            and (force or _is_cold(p, now, max_age, policy.hot_min_reads))
        ),
        key=lambda p: (order.get(p.segment, len(order)), p.segment),
    )
    if not cold:
        return CompactionReport(dataset, 0, 0, None)
    tables: list[pa.Table] = []
    for p in cold:
        try:
            _, plain = blobs.load(dataset, p)
        except NotFound:  # a concurrent compaction moved it first: nothing left to do here
            return CompactionReport(dataset, 0, 0, None)
        tables.append(decode_segment(plain).slice(p.row_offset, p.rows))
    # one merged blob per schema (an overwrite may have changed the layout)
    groups: dict[pa.Schema, list[int]] = {}
    for i, t in enumerate(tables):
        key = next((s for s in groups if s.equals(t.schema, check_metadata=True)), t.schema)
        groups.setdefault(key, []).append(i)
    last_blob: str | None = None
    rows = 0
    for members in groups.values():
        merged = pa.concat_tables([tables[i] for i in members])
        plain = encode_segment(merged, compression=policy.compression)
        stored = blobs.seal(dataset, plain)
        blob = stored_sha = sha256(stored)
        blobs.put(dataset, "analytical", blob, stored)
        offset = 0
        added: list[Placement] = []
        for i in members:
            p = cold[i]
            added.append(
                Placement(
                    p.segment,
                    "analytical",
                    blob,
                    offset,
                    p.rows,
                    stored_sha,
                    len(stored),
                    p.created_ns,
                    p.last_read_ns,
                    p.reads,
                )
            )
            offset += p.rows
        catalog.move(dataset, added, removed_backend="local")
        rows += offset
        last_blob = blob
    for p in cold:
        if not catalog.blob_referenced(dataset, "local", p.blob):
            blobs.delete(dataset, "local", p.blob)
    blobs.audited(
        "compact",
        dataset,
        last_blob or "",
        {"segments": len(cold), "rows": rows, "to": "analytical"},
    )
    return CompactionReport(dataset, len(cold), rows, last_blob)


async def compaction_job(
    compact_all: Callable[[], list[CompactionReport]], stop: asyncio.Event, period: float
) -> list[CompactionReport]:
    """Run ``compact_all`` every ``period`` seconds (in a worker thread) until ``stop`` is set;
    the reports of the passes that moved something."""
    if period <= 0:
        raise ValidationError(f"compaction interval must be > 0 s, not {period}")
    done: list[CompactionReport] = []
    while not stop.is_set():
        reports = await asyncio.to_thread(compact_all)
        done += [r for r in reports if r.segments]
        try:
            await asyncio.wait_for(stop.wait(), timeout=period)
        except TimeoutError:
            pass
    return done


__all__ = ["CompactionReport", "compact", "compaction_job"]
