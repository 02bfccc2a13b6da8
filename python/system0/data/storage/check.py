"""What ``ScalableStorage.commit`` admits: a batch's values checked against the contract
before anything is written.

The check runs in Rust (``_core.check_batch``), column by column over the table's Arrow
buffers, and reports what the codec reports for the same value in JSON: the codec's reason
codes and dotted paths (``greater_than_equal:state.health``).

Which batches are checked, and against which contract (``contract=`` of ``commit``):

* a :class:`~system0._core.DecodedBatch` is the codec's own output: every row in it already
  passed the contract in Rust, so it is stored as it is, never checked twice. It is known by
  its type, not by anything in the data: ``DecodedBatch`` is a final, frozen extension class
  that only the codec constructs, and its Arrow batch cannot be changed from Python, whereas
  schema metadata (``system0.contract``) is anyone's to write and so never waives a check;
* ``"auto"`` (the default) checks every other table whose schema metadata names a contract,
  or whose columns are a contract's (``state`` and ``action``: TrainingSample; ``champion``
  and ``health``: GameState); such a table must then have the contract's schema exactly, or
  the commit is refused with a schema mismatch that names the field;
* ``"TrainingSample"`` / ``"GameState"`` insist on that contract whatever the columns;
* ``None`` says the dataset is not contract data (features, metrics, a flight recording):
  it is stored unchecked, as is an ``"auto"`` table with none of the contract's columns.

What happens to rows that break the contract (``on_invalid=``): ``"refuse"`` (the default)
raises :class:`~system0.errors.ValidationError` naming the first bad rows, their indices and
reason codes, and writes nothing at all (no blob, no version, no dataset entry);
``"quarantine"`` stores the bad rows in the storage's :class:`Quarantine` (each as a JSON
document of the contract's shape, with every reason) and commits the rest.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from system0 import _core
from system0._core import DecodedBatch
from system0.data.models import format_rfc3339
from system0.data.serialization import reason_code
from system0.data.storage.segments import as_table
from system0.errors import ConfigError, ValidationError

ContractName = Literal["GameState", "TrainingSample"]
ContractChoice = Literal["auto", "GameState", "TrainingSample"] | None
OnInvalid = Literal["refuse", "quarantine"]
_CONTRACTS: tuple[str, ...] = ("GameState", "TrainingSample")
# the columns that make a table contract data when its metadata does not say so
_SHAPES: tuple[tuple[ContractName, frozenset[str]], ...] = (
    ("TrainingSample", frozenset({"state", "action"})),
    ("GameState", frozenset({"champion", "health"})),
)
_SHOWN = 5  # bad rows named in a refusal


@dataclass(frozen=True)
class Violation:
    """One broken rule: the row's index in the stored batch, the dotted path, the code."""

    row: int
    path: str
    code: str
    message: str

    @property
    def reason(self) -> str:
        """``"{code}:{path}"`` (just ``code`` at the row itself), as everywhere in system0."""
        return reason_code(self.path, self.code)


@dataclass(frozen=True)
class Admitted:
    """A batch ready for the commit path: its rows, its contract, and what broke.

    A checked table holds every row given, bad ones included (``violations`` index them).
    The codec's output holds only the rows it accepted; when ``commit`` itself decoded
    pydantic samples, the ones the codec refused are in ``violations`` (by input index) and
    ``raw`` (the exact bytes the codec saw).
    """

    table: pa.Table
    contract: ContractName | None
    violations: tuple[Violation, ...]
    checked: bool  # False: the codec's output, or not contract data
    raw: dict[int, bytes]
    total: int  # rows given

    @property
    def bad_rows(self) -> list[int]:
        return sorted({v.row for v in self.violations})


def _detect(schema: pa.Schema, choice: ContractChoice) -> ContractName | None:
    if choice is None:
        return None
    if choice != "auto":
        if choice not in _CONTRACTS:
            raise ConfigError(
                f"contract must be 'auto', 'GameState', 'TrainingSample' or None, not {choice!r}"
            )
        return choice
    named = (schema.metadata or {}).get(b"system0.contract", b"")
    for contract, _needs in _SHAPES:
        if named == contract.encode():
            return contract
    names = set(schema.names)
    for contract, needs in _SHAPES:
        if needs <= names:
            return contract
    return None


def check_table(table: pa.Table, contract: ContractName) -> list[Violation]:
    """Every broken rule of ``table`` (row indices over the whole table, chunks included)."""
    out: list[Violation] = []
    start = 0
    for batch in table.to_batches():
        out += [
            Violation(start + row, path, code, message)
            for row, path, code, message in _core.check_batch(batch, contract)
        ]
        start += batch.num_rows
    return out


def admit(samples: Any, contract: ContractChoice = "auto") -> Admitted:
    """Turn ``samples`` into a table and check it (see the module docs for which are)."""
    if type(samples) is DecodedBatch:
        return _decoded(samples, contract, own=False)
    if isinstance(samples, list) and samples and all(hasattr(s, "model_dump") for s in samples):
        from system0.data.serialization import decode_training_samples

        decoded = decode_training_samples([s.model_dump_json().encode() for s in samples])
        return _decoded(decoded, contract, own=True)
    table = as_table(samples)
    name = _detect(table.schema, contract)
    if name is None:
        return Admitted(table, None, (), False, {}, table.num_rows)
    violations = tuple(check_table(table, name))
    return Admitted(table, name, violations, True, {}, table.num_rows)


def _decoded(decoded: DecodedBatch, choice: ContractChoice, *, own: bool) -> Admitted:
    """The codec's output: trusted, but only for the contract it was decoded against. Its
    refused rows count only where commit decoded it (``own``); a caller who decoded a batch
    has applied its own policy to them already."""
    contract: Any = decoded.contract
    if choice not in ("auto", None, contract):
        raise ValidationError(
            f"a batch decoded as {contract} cannot be stored as {choice}; decode it with the "
            f"{choice} decoder, or pass contract='auto'"
        )
    table = as_table(decoded)
    if not own:
        return Admitted(table, contract, (), False, {}, table.num_rows)
    violations = tuple(Violation(r, p, c, m) for r, p, c, m in decoded.errors)
    raw = {row: data for row, data, _codes in decoded.rejected}
    return Admitted(table, contract, violations, False, raw, decoded.total)


def refusal(dataset: str, admitted: Admitted) -> ValidationError:
    """The error of a refused commit: how many rows, the first few with every reason."""
    by_row: dict[int, list[str]] = {}
    for v in admitted.violations:
        by_row.setdefault(v.row, []).append(v.reason)
    shown = sorted(by_row)[:_SHOWN]
    detail = "; ".join(f"row {r}: {', '.join(by_row[r])}" for r in shown)
    more = f" (and {len(by_row) - len(shown)} more rows)" if len(by_row) > len(shown) else ""
    first = next(v for v in admitted.violations if v.row == shown[0])
    return ValidationError(
        f"dataset {dataset!r}: {len(by_row)} of {admitted.total} "
        f"{admitted.contract} rows break the contract, nothing was stored: {detail}{more} "
        f"(row {first.row}: {first.message}); fix the producer, or commit with "
        "on_invalid='quarantine' to keep the valid rows and quarantine the rest"
    )


def good_rows(admitted: Admitted) -> pa.Table:
    """The rows to commit: the table without its bad rows (order kept)."""
    if not admitted.checked or not admitted.violations:
        return admitted.table  # the codec's output holds only the rows it accepted
    keep = np.ones(admitted.table.num_rows, dtype=bool)
    keep[admitted.bad_rows] = False
    return admitted.table.filter(pa.array(keep))


def quarantine_records(
    admitted: Admitted,
) -> list[tuple[int, bytes, Sequence[tuple[str, str, str]]]]:
    """``(row, raw, errors)`` for ``Quarantine.add``: the codec's raw bytes where it saw
    them, else the row as a JSON document of the contract's shape, so that
    ``Quarantine.replay`` can decode it again once fixed."""
    errors: dict[int, list[tuple[str, str, str]]] = {}
    for v in admitted.violations:
        errors.setdefault(v.row, []).append((v.path, v.code, v.message))
    rows = sorted(errors)
    missing = [r for r in rows if r not in admitted.raw]
    rendered = dict(zip(missing, _documents(admitted, missing), strict=True))
    return [(r, admitted.raw.get(r) or rendered[r], errors[r]) for r in rows]


def _documents(admitted: Admitted, rows: list[int]) -> list[bytes]:
    if not rows:
        return []
    bad = admitted.table.take(pa.array(rows, pa.int64()))
    bad = bad.cast(pa.schema([_plain(f) for f in bad.schema]))
    make = _sample_doc if admitted.contract == "TrainingSample" else _state_doc
    return [
        json.dumps(make(r), separators=(",", ":"), default=str).encode() for r in bad.to_pylist()
    ]


def _plain(f: pa.Field) -> pa.Field:
    """``f`` with timestamps as integers (one out of range would not convert to a datetime)
    and every field nullable (a bad row may hold a null where the schema promises none)."""
    t = f.type
    if pa.types.is_timestamp(t):
        t = pa.int64()
    elif pa.types.is_struct(t):
        t = pa.struct([_plain(c) for c in t])
    elif pa.types.is_list(t):
        t = pa.list_(_plain(t.value_field))
    return f.with_type(t).with_nullable(True)


def _iso(us: int | None) -> str | int | None:
    if us is None:
        return None
    try:
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    except OverflowError:
        return us  # outside what a datetime holds: kept as the number it was
    return format_rfc3339(when)


def _state_doc(s: dict[str, Any] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "timestamp": _iso(s["timestamp"]),
        "champion": s["champion"],
        "position": {"x": s["position_x"], "y": s["position_y"]},
        "health": s["health"],
        "mana": s["mana"],
        "cooldowns": {k[len("cooldown_") :]: v for k, v in s.items() if k.startswith("cooldown_")},
        "inventory": s["inventory"],
        "vision_score": s["vision_score"],
        "gold_advantage": s["gold_advantage"],
    }


def _sample_doc(r: dict[str, Any]) -> dict[str, Any]:
    a = r["action"]
    action: dict[str, Any] = {"kind": a["kind"]}
    if a["slot"] is not None:
        action["slot"] = a["slot"]
    if a["item"] is not None:
        action["item"] = a["item"]
    target = {k: a[f"target_{k}"] for k in ("x", "y") if a[f"target_{k}"] is not None}
    if target:
        action["target"] = target
    return {
        "state": _state_doc(r["state"]),
        "action": action,
        "reward": r["reward"],
        "next_state": _state_doc(r["next_state"]),
        "metadata": r["metadata"],
    }


__all__ = [
    "Admitted",
    "ContractChoice",
    "OnInvalid",
    "Violation",
    "admit",
    "check_table",
    "good_rows",
    "quarantine_records",
    "refusal",
]
