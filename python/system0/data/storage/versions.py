"""The catalog: datasets, append-only versions with content-hashed manifests, tags, placements.

One SQLite file (WAL) beside the data. A version is a manifest, the ordered list of segments
(id = SHA-256 of the segment's Parquet bytes, rows, bytes) plus the parent version and the
schema's fingerprint, and it is *named by the SHA-256 of that manifest's canonical JSON*: the
same data committed on the same parent has the same name on every machine.

Atomicity: segment bytes are written to their backend (durably) first; the version row, its
placements and the head move appear together in one SQLite transaction afterwards. A process
killed anywhere before that commit leaves only unreferenced blobs (removed by ``gc``), never a
visible partial version. Placements (which backend holds which segment, at which offset inside
which blob, with the checksum of the stored bytes) live apart from manifests, so compaction can
move and merge segments without changing any version's name.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from system0.data.storage.segments import check_dataset, sha256
from system0.errors import NotFound, Unavailable, ValidationError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY, encrypted INTEGER NOT NULL, created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    dataset TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, parent TEXT,
    manifest TEXT NOT NULL, message TEXT NOT NULL, created_ns INTEGER NOT NULL,
    PRIMARY KEY (dataset, seq), UNIQUE (dataset, id));
CREATE TABLE IF NOT EXISTS tags (
    dataset TEXT NOT NULL, tag TEXT NOT NULL, version TEXT NOT NULL, created_ns INTEGER NOT NULL,
    PRIMARY KEY (dataset, tag));
CREATE TABLE IF NOT EXISTS placements (
    dataset TEXT NOT NULL, segment TEXT NOT NULL, backend TEXT NOT NULL, blob TEXT NOT NULL,
    row_offset INTEGER NOT NULL, rows INTEGER NOT NULL, blob_sha256 TEXT NOT NULL,
    blob_bytes INTEGER NOT NULL, created_ns INTEGER NOT NULL, last_read_ns INTEGER NOT NULL,
    reads INTEGER NOT NULL, PRIMARY KEY (dataset, segment, backend));
CREATE TABLE IF NOT EXISTS pending (
    dataset TEXT NOT NULL, backend TEXT NOT NULL, blob TEXT NOT NULL, created_ns INTEGER NOT NULL,
    PRIMARY KEY (dataset, backend, blob));
"""


@dataclass(frozen=True)
class SegmentEntry:
    id: str  # SHA-256 of the plaintext Parquet bytes of this segment alone
    rows: int
    bytes: int


@dataclass(frozen=True)
class Manifest:
    dataset: str
    parent: str | None
    schema: str  # schema fingerprint
    segments: tuple[SegmentEntry, ...]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)

    def canonical(self) -> str:
        body = {
            "dataset": self.dataset,
            "parent": self.parent,
            "schema": self.schema,
            "segments": [[s.id, s.rows, s.bytes] for s in self.segments],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @property
    def id(self) -> str:
        return sha256(self.canonical().encode())

    @classmethod
    def parse(cls, text: str) -> Manifest:
        body = json.loads(text)
        segs = tuple(SegmentEntry(s[0], int(s[1]), int(s[2])) for s in body["segments"])
        return cls(body["dataset"], body["parent"], body["schema"], segs)


@dataclass(frozen=True)
class Version:
    dataset: str
    id: str
    seq: int
    parent: str | None
    message: str
    created_ns: int
    manifest: Manifest

    @property
    def rows(self) -> int:
        return self.manifest.rows


@dataclass(frozen=True)
class Placement:
    segment: str
    backend: str
    blob: str  # blob id in that backend (equals ``segment`` unless merged by compaction)
    row_offset: int
    rows: int
    blob_sha256: str  # of the stored (possibly encrypted) bytes
    blob_bytes: int
    created_ns: int = 0
    last_read_ns: int = 0
    reads: int = 0


def _version(dataset: str, row: Sequence[Any]) -> Version:
    seq, vid, parent, manifest, message, created = row
    return Version(dataset, vid, seq, parent, message, created, Manifest.parse(manifest))


def _row(dataset: str, p: Placement, created: int, last_read: int) -> tuple[Any, ...]:
    blob = (p.blob, p.row_offset, p.rows, p.blob_sha256, p.blob_bytes)
    return (dataset, p.segment, p.backend, *blob, created, last_read)


_HEX_PREFIX = re.compile(r"[0-9a-f]{8,64}", re.ASCII)
_VCOLS = "seq, id, parent, manifest, message, created_ns"


class Catalog:
    """The version catalog of one storage root. Safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=60.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise Unavailable(f"catalog {self.path} could not be opened: {e}") from e
        self._lock = threading.RLock()

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE so two committers serialise on the head."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _q(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # datasets -------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return [r[0] for r in self._q("SELECT name FROM datasets ORDER BY name")]

    def is_encrypted(self, dataset: str) -> bool | None:
        rows = self._q("SELECT encrypted FROM datasets WHERE name = ?", (dataset,))
        return bool(rows[0][0]) if rows else None

    def ensure_dataset(self, dataset: str, *, encrypted: bool) -> None:
        check_dataset(dataset)
        with self._txn() as db:
            db.execute(
                "INSERT OR IGNORE INTO datasets (name, encrypted, created_ns) VALUES (?, ?, ?)",
                (dataset, int(encrypted), time.time_ns()),
            )

    # versions -------------------------------------------------------------------------------
    def head(self, dataset: str) -> Version | None:
        rows = self._q(
            f"SELECT {_VCOLS} FROM versions WHERE dataset = ? ORDER BY seq DESC LIMIT 1",
            (dataset,),
        )
        return _version(dataset, rows[0]) if rows else None

    def versions(self, dataset: str) -> list[Version]:
        rows = self._q(f"SELECT {_VCOLS} FROM versions WHERE dataset = ? ORDER BY seq", (dataset,))
        return [_version(dataset, r) for r in rows]

    def begin_write(self, dataset: str, backend: str, blob: str) -> None:
        """Announce a blob about to be written, so ``gc`` leaves it alone until it commits."""
        with self._txn() as db:
            db.execute(
                "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)",
                (dataset, backend, blob, time.time_ns()),
            )

    def in_use(self, dataset: str, backend: str, grace_ns: int) -> set[str]:
        """Blobs on ``backend`` that gc must keep: placed, or announced within ``grace_ns``."""
        placed = self._q(
            "SELECT DISTINCT blob FROM placements WHERE dataset = ? AND backend = ?",
            (dataset, backend),
        )
        pending = self._q(
            "SELECT blob FROM pending WHERE dataset = ? AND backend = ? AND created_ns > ?",
            (dataset, backend, time.time_ns() - grace_ns),
        )
        return {r[0] for r in placed} | {r[0] for r in pending}

    def blob_referenced(self, dataset: str, backend: str, blob: str) -> bool:
        rows = self._q(
            "SELECT 1 FROM placements WHERE dataset = ? AND backend = ? AND blob = ? LIMIT 1",
            (dataset, backend, blob),
        )
        return bool(rows)

    def commit(
        self,
        dataset: str,
        schema: str,
        segments: Sequence[SegmentEntry],
        placements: Sequence[Placement],
        *,
        overwrite: bool = False,
        message: str = "",
    ) -> Version:
        """Append ``segments`` (already durable in their backends) as a new head, atomically."""
        now = time.time_ns()
        with self._txn() as db:
            rows = db.execute(
                f"SELECT {_VCOLS} FROM versions WHERE dataset = ? ORDER BY seq DESC LIMIT 1",
                (dataset,),
            ).fetchall()
            head = _version(dataset, rows[0]) if rows else None
            if head is not None and head.manifest.schema != schema and not overwrite:
                raise ValidationError(
                    f"dataset {dataset!r}: the batch's schema differs from the schema of "
                    f"version {head.id[:12]}; append batches of the same schema, or commit with "
                    "overwrite=True to start a new layout"
                )
            kept = () if head is None or overwrite else head.manifest.segments
            manifest = Manifest(dataset, head.id if head else None, schema, (*kept, *segments))
            vid = manifest.id
            if head is not None and head.id == vid:
                return head  # nothing new: committing the same content twice is a no-op
            seq = head.seq + 1 if head else 1
            db.execute(
                "INSERT INTO versions (dataset, seq, id, parent, manifest, message, created_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (dataset, seq, vid, manifest.parent, manifest.canonical(), message, now),
            )
            db.executemany(
                "INSERT OR IGNORE INTO placements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                [_row(dataset, p, now, now) for p in placements],
            )
            db.executemany(
                "DELETE FROM pending WHERE dataset = ? AND backend = ? AND blob = ?",
                [(dataset, p.backend, p.blob) for p in placements],
            )
        return Version(dataset, vid, seq, manifest.parent, message, now, manifest)

    def resolve(self, dataset: str, ref: str | None = None) -> Version:
        """A version by tag, by id (or a unique prefix of 8+ hex digits), or the head."""
        if ref is None or ref == "latest":
            head = self.head(dataset)
            if head is None:
                raise NotFound(
                    f"dataset {dataset!r} has no versions; known datasets: "
                    f"{', '.join(self.datasets()) or 'none'}"
                )
            return head
        tagged = self._q("SELECT version FROM tags WHERE dataset = ? AND tag = ?", (dataset, ref))
        vid = tagged[0][0] if tagged else ref
        rows = []
        if tagged or _HEX_PREFIX.fullmatch(ref):  # a prefix, compared as text (no LIKE wildcards)
            rows = self._q(
                f"SELECT {_VCOLS} FROM versions WHERE dataset = ? AND substr(id, 1, ?) = ? LIMIT 2",
                (dataset, len(vid), vid),
            )
        if len(rows) == 1:
            return _version(dataset, rows[0])
        tags = ", ".join(t for t, _ in self.tags(dataset)) or "none"
        what = "is ambiguous" if len(rows) > 1 else "is neither a tag nor a version id"
        raise NotFound(
            f"dataset {dataset!r}: {ref!r} {what}; tags: {tags}; list versions with "
            "`system0 data list`"
        )

    # tags -----------------------------------------------------------------------------------
    def tag(self, dataset: str, tag: str, ref: str | None = None, *, move: bool = False) -> str:
        if not tag or len(tag) > 128 or any(c.isspace() for c in tag):
            raise ValidationError(f"tag {tag!r}: use 1 to 128 characters without spaces")
        version = self.resolve(dataset, ref)
        with self._txn() as db:
            old = db.execute(
                "SELECT version FROM tags WHERE dataset = ? AND tag = ?", (dataset, tag)
            ).fetchall()
            if old and old[0][0] != version.id and not move:
                raise ValidationError(
                    f"dataset {dataset!r}: tag {tag!r} already pins {old[0][0][:12]}; tags are "
                    "immutable unless moved explicitly (move=True)"
                )
            db.execute(
                "INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?)",
                (dataset, tag, version.id, time.time_ns()),
            )
        return version.id

    def untag(self, dataset: str, tag: str) -> None:
        with self._txn() as db:
            db.execute("DELETE FROM tags WHERE dataset = ? AND tag = ?", (dataset, tag))

    def tags(self, dataset: str) -> list[tuple[str, str]]:
        return [
            (r[0], r[1])
            for r in self._q(
                "SELECT tag, version FROM tags WHERE dataset = ? ORDER BY tag", (dataset,)
            )
        ]

    # placements -----------------------------------------------------------------------------
    def placements(self, dataset: str, segment: str | None = None) -> list[Placement]:
        sql = "SELECT * FROM placements WHERE dataset = ?"
        args: tuple[Any, ...] = (dataset,)
        if segment is not None:
            sql += " AND segment = ?"
            args += (segment,)
        return [Placement(*r[1:]) for r in self._q(sql + " ORDER BY segment, backend", args)]

    def record_reads(self, dataset: str, segments: Sequence[str]) -> None:
        now = time.time_ns()
        with self._txn() as db:
            db.executemany(
                "UPDATE placements SET reads = reads + 1, last_read_ns = ? "
                "WHERE dataset = ? AND segment = ?",
                [(now, dataset, s) for s in segments],
            )

    def move(self, dataset: str, added: Sequence[Placement], removed_backend: str) -> None:
        """Add placements and drop the same segments' placements on ``removed_backend``."""
        now = time.time_ns()
        with self._txn() as db:
            for p in added:
                db.execute(
                    "INSERT OR REPLACE INTO placements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    _row(dataset, p, now, p.last_read_ns),
                )
                db.execute(
                    "DELETE FROM placements WHERE dataset = ? AND segment = ? AND backend = ?",
                    (dataset, p.segment, removed_backend),
                )
                db.execute(
                    "DELETE FROM pending WHERE dataset = ? AND backend = ? AND blob = ?",
                    (dataset, p.backend, p.blob),
                )

    # retention ------------------------------------------------------------------------------
    def retain(self, dataset: str, keep_last: int) -> tuple[list[str], list[Placement]]:
        """Drop versions beyond the newest ``keep_last`` that no tag pins.

        Returns the dropped version ids and the placements of segments no surviving version
        references (their catalog rows are gone; the caller deletes the blobs).
        """
        if keep_last < 1:
            raise ValidationError(
                f"keep_last must be >= 1 (the head is always kept), not {keep_last}"
            )
        with self._txn() as db:
            rows = db.execute(
                f"SELECT {_VCOLS} FROM versions WHERE dataset = ? ORDER BY seq DESC", (dataset,)
            ).fetchall()
            pinned = {
                r[0] for r in db.execute("SELECT version FROM tags WHERE dataset = ?", (dataset,))
            }
            versions = [_version(dataset, r) for r in rows]
            keep = [v for i, v in enumerate(versions) if i < keep_last or v.id in pinned]
            drop = [v for v in versions if v not in keep]
            live = {s.id for v in keep for s in v.manifest.segments}
            db.executemany(
                "DELETE FROM versions WHERE dataset = ? AND id = ?", [(dataset, v.id) for v in drop]
            )
            dead = [
                Placement(*r[1:])
                for r in db.execute("SELECT * FROM placements WHERE dataset = ?", (dataset,))
                if r[1] not in live
            ]
            db.executemany(
                "DELETE FROM placements WHERE dataset = ? AND segment = ? AND backend = ?",
                [(dataset, p.segment, p.backend) for p in dead],
            )
        return [v.id for v in drop], dead

    def close(self) -> None:
        with self._lock:
            self._db.close()


__all__ = ["Catalog", "Manifest", "Placement", "SegmentEntry", "Version"]
