"""Anchors: a signed checkpoint of a ledger, kept by an auditor outside the ledger directory.

Everything inside a run folder can be rolled back at once: replace ``checkpoints.s0c`` with an
older copy, cut the log back to match, and the ledger verifies on its own. An anchor kept
elsewhere catches it: ``system0 audit verify PATH --anchor FILE`` checks the anchor's
signature with the ledger's public key and proves, with an RFC 9162 consistency proof from
the anchor to the ledger's newest signed checkpoint, that the ledger extends what the anchor
saw.

The file is one JSON object (``system0 audit checkpoint PATH --out FILE`` writes it)::

    {"format": "system0.audit.anchor/v1",
     "ledger_id": "<16 bytes, hex>", "public_key": "<Ed25519 key, 32 bytes, hex>",
     "size": <entries>, "root": "<SHA-256 tree head, hex>",
     "time_unix_ns": <signing time>, "signature": "<Ed25519 signature, 64 bytes, hex>"}

The signature covers ``"system0/ledger/checkpoint/v1\\0" || ledger_id || size (u64 LE) ||
root || time_unix_ns (u64 LE)``, exactly the ledger's own checkpoint records. ``format`` and
``public_key`` may be absent, so the ``checkpoint`` object that ``system0 audit prove`` prints
is an anchor too; the public key kept in the file is only a convenience: an auditor passes
the key they trust with ``--public-key``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from system0 import _core
from system0.errors import NotFound, ValidationError
from system0.security.audit import Checkpoint

ANCHOR_FORMAT = "system0.audit.anchor/v1"

_LENGTHS = {"ledger_id": 16, "root": 32, "signature": 64, "public_key": 32}


@dataclass(frozen=True)
class Anchor:
    """A checkpoint and (optionally) the public key of the ledger that signed it."""

    checkpoint: Checkpoint
    public_key: bytes | None = None

    def verify(self, public_key: bytes | None = None) -> bool:
        """The checkpoint's signature, checked with ``public_key`` (default: the kept one)."""
        key = public_key if public_key is not None else self.public_key
        return key is not None and self.checkpoint.verify(key)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": ANCHOR_FORMAT, **self.checkpoint.to_json()}
        if self.public_key is not None:
            doc["public_key"] = self.public_key.hex()
        return doc

    @classmethod
    def from_json(cls, doc: Any, where: str = "anchor") -> Anchor:
        """Parse an anchor document; ``ValidationError`` says which field is wrong."""
        if not isinstance(doc, Mapping):
            raise ValidationError(f"{where}: an anchor is a JSON object, got {type(doc).__name__}")
        fmt = doc.get("format", ANCHOR_FORMAT)
        if fmt != ANCHOR_FORMAT:
            raise ValidationError(f"{where}: format is {fmt!r}, this build reads {ANCHOR_FORMAT!r}")
        cp = Checkpoint(
            _hex(doc, "ledger_id", where),
            _count(doc, "size", where),
            _hex(doc, "root", where),
            _count(doc, "time_unix_ns", where),
            _hex(doc, "signature", where),
        )
        key = _hex(doc, "public_key", where) if doc.get("public_key") is not None else None
        return cls(cp, key)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the anchor beside ``path`` and rename it into place (never half-written)."""
        final = Path(path)
        tmp = final.with_name(final.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, final)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Anchor:
        where = os.fspath(path)
        try:
            text = Path(path).read_text()
        except FileNotFoundError as e:
            raise NotFound(f"anchor {where} does not exist") from e
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationError(
                f"{where}: not JSON ({e}); an anchor is the JSON file that "
                "`system0 audit checkpoint PATH --out FILE` writes"
            ) from e
        return cls.from_json(doc, where)


def _hex(doc: Mapping[str, Any], name: str, where: str) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{where}: field {name!r} is missing or not a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError as e:
        raise ValidationError(f"{where}: field {name!r} is not hex: {e}") from e
    if len(raw) != _LENGTHS[name]:
        raise ValidationError(
            f"{where}: field {name!r} must be {_LENGTHS[name]} bytes, got {len(raw)}"
        )
    return raw


def _count(doc: Mapping[str, Any], name: str, where: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise ValidationError(f"{where}: field {name!r} must be an integer in [0, 2**64)")
    return value


def export_anchor(ledger: str | os.PathLike[str], size: int | None = None) -> Anchor:
    """The ledger's newest signed checkpoint (or the one of ``size``), as an anchor.

    Reads ``ledger.meta`` and ``checkpoints.s0c`` only: nothing is opened for writing. The
    exported checkpoint is only as good as the ledger it came from, so export right after
    ``system0 audit verify`` passes.
    """
    ledger_id, public_key, rows = _core.ledger_info(Path(ledger))
    cps = [Checkpoint(ledger_id, *row) for row in rows]
    if not cps:
        raise NotFound(
            f"ledger {os.fspath(ledger)} has no signed checkpoint yet; sign one "
            "(AuditLedger.checkpoint) before exporting an anchor"
        )
    if size is None:
        return Anchor(max(cps, key=lambda c: c.size), public_key)
    for cp in cps:
        if cp.size == size:
            return Anchor(cp, public_key)
    raise NotFound(
        f"ledger {os.fspath(ledger)} has no checkpoint of size {size}; "
        f"sizes: {sorted({c.size for c in cps})}"
    )


__all__ = ["ANCHOR_FORMAT", "Anchor", "export_anchor"]
