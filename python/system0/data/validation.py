"""Validation policies and the quarantine.

Each contract gets a policy: ``warn`` (log the refused rows and go on), ``quarantine`` (store
them, then go on) or ``fail`` (raise :class:`~system0.errors.ValidationError` if any row is
refused). Under ``warn`` and ``quarantine`` one bad row never fails a batch: the valid rows
still come back as Arrow.

:class:`Quarantine` keeps refused rows in a SQLite file: the raw bytes exactly as received,
every reason code, and context (contract, source, trace id, time). Rows can be listed, and
replayed after the producer (or a ``fix`` function) corrects them. Each stored row carries a
CRC-32C of its bytes, checked on every read, so silent corruption on disk raises
:class:`~system0.errors.IntegrityError` instead of replaying garbage.

Drift checks (:class:`ReferenceProfile`, :class:`DriftReport`) live in
:mod:`system0.data.drift` and are re-exported here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from system0 import _core
from system0._core import DecodedBatch
from system0.data.drift import DriftReport, FeatureDrift, ReferenceProfile
from system0.data.serialization import decode_game_states, decode_training_samples
from system0.errors import IntegrityError, ValidationError

log = logging.getLogger("system0.data.validation")

Contract = Literal["GameState", "TrainingSample"]
_DECODERS: dict[str, Callable[[list[bytes]], DecodedBatch]] = {
    "GameState": decode_game_states,
    "TrainingSample": decode_training_samples,
}


class Policy(StrEnum):
    """What happens to rows that break their contract."""

    WARN = "warn"
    QUARANTINE = "quarantine"
    FAIL = "fail"


@dataclass(frozen=True)
class QuarantinedRow:
    """One refused row as stored: raw bytes, reasons and context."""

    id: int
    contract: str
    raw: bytes
    codes: tuple[str, ...]
    errors: tuple[tuple[str, str, str], ...]  # (path, code, message)
    source: str
    trace_id: str
    row: int
    created_ns: int
    status: str


@dataclass(frozen=True)
class ReplayResult:
    """Rows that now pass (decoded, in quarantine-id order) and the ids still refused."""

    batch: DecodedBatch
    replayed_ids: tuple[int, ...]
    still_refused_ids: tuple[int, ...]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contract TEXT NOT NULL,
    raw BLOB NOT NULL,
    crc32c INTEGER NOT NULL,
    codes TEXT NOT NULL,
    errors TEXT NOT NULL,
    source TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'held'
);
CREATE INDEX IF NOT EXISTS quarantine_status ON quarantine(status, contract);
"""


class Quarantine:
    """Refused rows in a SQLite file (WAL mode; safe to share between threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_batch(self, decoded: DecodedBatch, *, source: str = "", trace_id: str = "") -> int:
        """Store every refused row of ``decoded``; returns how many were stored."""
        errors_by_row: dict[int, list[tuple[str, str, str]]] = {}
        for row, path, code, message in decoded.errors:
            errors_by_row.setdefault(row, []).append((path, code, message))
        refused = [(row, raw, errors_by_row.get(row, [])) for row, raw, _codes in decoded.rejected]
        return self.add(decoded.contract, refused, source=source, trace_id=trace_id)

    def add(
        self,
        contract: str,
        rows: Sequence[tuple[int, bytes, Sequence[tuple[str, str, str]]]],
        *,
        source: str = "",
        trace_id: str = "",
    ) -> int:
        """Store refused rows given as ``(row, raw bytes, [(path, code, message), ...])``, in
        one transaction (all or none); returns how many were stored. The codes are those of
        the errors, in order."""
        now = time.time_ns()
        trace = trace_id or uuid.uuid4().hex
        records = [
            (
                contract,
                raw,
                _core.crc32c(raw),
                json.dumps([code for _path, code, _message in errors]),
                json.dumps([list(e) for e in errors]),
                source,
                trace,
                row,
                now,
            )
            for row, raw, errors in rows
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO quarantine (contract, raw, crc32c, codes, errors, source,"
                    " trace_id, row, created_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    records,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(records)

    def list(
        self,
        *,
        contract: str | None = None,
        code: str | None = None,
        status: str = "held",
        limit: int = 1000,
    ) -> list[QuarantinedRow]:
        """Stored rows, oldest first, filtered by contract, reason code and status."""
        sql = "SELECT * FROM quarantine WHERE status = ?"
        args: list[object] = [status]
        if contract is not None:
            sql += " AND contract = ?"
            args.append(contract)
        if code is not None:
            # codes is a JSON list of plain identifiers: match the quoted code exactly
            sql += " AND instr(codes, ?) > 0"
            args.append(json.dumps(code))
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._row(r) for r in rows]

    def count(self, status: str = "held") -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM quarantine WHERE status = ?", (status,)
            ).fetchone()
        return int(n)

    def reason_counts(self) -> dict[str, int]:
        """How many held rows carry each reason code (for dashboards and alerts)."""
        counts: dict[str, int] = {}
        for r in self.list(limit=1_000_000):
            for c in set(r.codes):
                counts[c] = counts.get(c, 0) + 1
        return counts

    def replay(
        self,
        fix: Callable[[bytes], bytes] | None = None,
        *,
        contract: str = "GameState",
        ids: Sequence[int] | None = None,
    ) -> ReplayResult:
        """Decode held rows again (after ``fix``, if given). Rows that now pass are marked
        ``replayed`` and returned as a batch; the rest stay held with their new reasons."""
        held = [
            r for r in self.list(contract=contract, limit=1_000_000) if ids is None or r.id in ids
        ]
        raws = [fix(r.raw) if fix is not None else r.raw for r in held]
        decoded = _DECODERS[contract](raws)
        passed = {held[i].id for i in decoded.rows}
        new_errors: dict[int, list[tuple[str, str, str]]] = {}
        for row, path, code, message in decoded.errors:
            new_errors.setdefault(held[row].id, []).append((path, code, message))
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE quarantine SET status = 'replayed' WHERE id = ?", [(i,) for i in passed]
            )
            for qid, errs in new_errors.items():
                codes = [c for _p, c, _m in errs]
                self._db.execute(
                    "UPDATE quarantine SET codes = ?, errors = ? WHERE id = ?",
                    (json.dumps(codes), json.dumps(errs), qid),
                )
            self._db.execute("COMMIT")
        still = tuple(r.id for r in held if r.id not in passed)
        return ReplayResult(decoded, tuple(held[i].id for i in decoded.rows), still)

    def drop(self, ids: Sequence[int]) -> None:
        """Mark rows as given up on (kept for the record, no longer listed as held)."""
        with self._lock:
            self._db.executemany(
                "UPDATE quarantine SET status = 'dropped' WHERE id = ?", [(i,) for i in ids]
            )

    def __iter__(self) -> Iterator[QuarantinedRow]:
        return iter(self.list(limit=1_000_000))

    @staticmethod
    def _row(r: tuple[object, ...]) -> QuarantinedRow:
        (qid, contract, raw, crc, codes, errors, source, trace, row, created, status) = r
        assert isinstance(raw, bytes)
        if _core.crc32c(raw) != crc:
            raise IntegrityError(
                f"quarantined row {qid} failed its CRC-32C check: the database file is "
                "corrupt; restore it from a backup"
            )
        return QuarantinedRow(
            id=int(str(qid)),
            contract=str(contract),
            raw=raw,
            codes=tuple(json.loads(str(codes))),
            errors=tuple(tuple(e) for e in json.loads(str(errors))),
            source=str(source),
            trace_id=str(trace),
            row=int(str(row)),
            created_ns=int(str(created)),
            status=str(status),
        )


@dataclass
class Validator:
    """Applies each contract's policy to decoded batches.

    ``policies`` maps a contract name to its :class:`Policy` (default ``quarantine``, which
    needs a :class:`Quarantine`; without one, ``quarantine`` falls back to ``warn``).
    ``on_refused`` is called with ``(contract, refused_count)`` after each batch, e.g. to
    bump a telemetry counter.
    """

    quarantine: Quarantine | None = None
    policies: Mapping[str, Policy | str] = field(default_factory=dict)
    on_refused: Callable[[str, int], None] | None = None

    def policy(self, contract: str) -> Policy:
        return Policy(self.policies.get(contract, Policy.QUARANTINE))

    def check(self, decoded: DecodedBatch, *, source: str = "", trace_id: str = "") -> DecodedBatch:
        """Apply the policy to the refused rows of ``decoded`` and return it."""
        refused = decoded.rejected
        if not refused:
            return decoded
        contract = decoded.contract
        policy = self.policy(contract)
        if self.on_refused is not None:
            self.on_refused(contract, len(refused))
        if policy is Policy.FAIL:
            first = decoded.errors[:5]
            detail = "; ".join(f"row {r} {p or '<row>'}: {c} ({m})" for r, p, c, m in first)
            raise ValidationError(
                f"{len(refused)} of {decoded.total} {contract} rows broke the contract "
                f"(policy=fail): {detail}; fix the producer or use policy 'quarantine'"
            )
        if policy is Policy.QUARANTINE and self.quarantine is not None:
            self.quarantine.add_batch(decoded, source=source, trace_id=trace_id)
        else:
            for r, p, c, m in decoded.errors[:20]:
                log.warning("%s row %d refused at %s: %s (%s)", contract, r, p or "<row>", c, m)
        return decoded

    def ingest(
        self,
        data: bytes | Sequence[bytes],
        *,
        contract: Contract = "GameState",
        source: str = "",
        trace_id: str = "",
    ) -> DecodedBatch:
        """Decode ``data`` against ``contract`` and apply its policy."""
        decoder = _DECODERS[contract]
        rows = data if isinstance(data, bytes) else list(data)
        return self.check(decoder(rows), source=source, trace_id=trace_id)  # type: ignore[arg-type]


__all__ = [
    "DriftReport",
    "FeatureDrift",
    "Policy",
    "Quarantine",
    "QuarantinedRow",
    "ReferenceProfile",
    "ReplayResult",
    "Validator",
]
