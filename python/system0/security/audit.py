"""The audit ledger: append-only, encrypted, Merkle-hashed, with signed checkpoints.

Every entry is sealed under the :class:`~system0.security.encryption.Keyring` with the ledger
id, its index, its time and the previous tree root as associated data, then framed and hashed
into an RFC 9162 Merkle tree (leaf ``SHA-256(0x00 || entry)``, node
``SHA-256(0x01 || left || right)``). The tree hashes ciphertext plus metadata, so an auditor
without keys can recompute it; :meth:`AuditLedger.checkpoint` signs ``(size, root, time)``
with the ledger's Ed25519 identity key, and :func:`verify_inclusion`,
:func:`verify_consistency` and :meth:`Checkpoint.verify` need only the public key.

Durability (``fsync=``): every appended entry is written to the kernel before ``append``
returns, so it survives ``kill -9``. ``"always"`` (default) also syncs before returning, with
group commit (threads appending together share one ``fdatasync``), so nothing acknowledged is
lost on power failure; ``"interval"`` syncs when the last sync is older than
``fsync_interval_s``; ``"never"`` leaves it to the kernel. Segment files roll at
``segment_bytes``. Opening a ledger cuts a torn last record (reported in
:attr:`AuditLedger.recovery`); any other damage raises :class:`~system0.errors.IntegrityError`.
:meth:`AuditLedger.verify` and :func:`verify_ledger` stream the files in bounded memory and
name the first bad entry; they report how many entries no signed checkpoint covers yet, and
given an ``anchor`` (a checkpoint kept outside the directory, see
:mod:`system0.security.audit_anchor`) they prove the ledger extends it, which catches a
checkpoint file rolled back to an older copy and a log cut back to match it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from system0 import _core

# What the streaming auditor found: frozen Rust classes (documented in ``_core.pyi``) that
# cross the boundary whole, re-exported under their public names.
from system0._core import AnchorCheck, VerifyReport
from system0.errors import IntegrityError
from system0.security.encryption import Keyring, SigningKey

FsyncPolicy = Literal["always", "interval", "never"]

_log = logging.getLogger("system0.security.audit")


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || entry)``."""
    return _core.merkle_leaf_hash(entry)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 ``MTH`` of the entries ``leaves`` (each is leaf-hashed first)."""
    return _core.merkle_root(list(leaves))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 ``PATH(index, D[n])`` over the entries ``leaves``."""
    return _core.merkle_inclusion_proof(list(leaves), index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """RFC 9162 ``PROOF(old_size, D[n])`` over the entries ``leaves``."""
    return _core.merkle_consistency_proof(list(leaves), old_size)


def verify_inclusion(
    entry: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``entry`` is leaf ``index`` of the tree of ``tree_size`` with ``root``."""
    return _core.merkle_verify_inclusion(leaf_hash(entry), index, tree_size, list(proof), root)


def verify_consistency(
    old_size: int, size: int, old_root: bytes, root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when the tree ``(size, root)`` extends ``(old_size, old_root)`` append-only."""
    return _core.merkle_verify_consistency(old_size, size, old_root, root, list(proof))


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: ledger ``ledger_id`` held ``size`` entries with ``root``."""

    ledger_id: bytes
    size: int
    root: bytes
    time_unix_ns: int
    signature: bytes

    def verify(self, public_key: bytes) -> bool:
        """Check the Ed25519 signature with the ledger's public key alone."""
        return _core.checkpoint_verify(
            self.ledger_id, public_key, self.size, self.root, self.time_unix_ns, self.signature
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ledger_id": self.ledger_id.hex(),
            "size": self.size,
            "root": self.root.hex(),
            "time_unix_ns": self.time_unix_ns,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Checkpoint:
        return cls(
            bytes.fromhex(doc["ledger_id"]),
            int(doc["size"]),
            bytes.fromhex(doc["root"]),
            int(doc["time_unix_ns"]),
            bytes.fromhex(doc["signature"]),
        )


@dataclass(frozen=True)
class InclusionProof:
    """Everything a third party needs to check that one entry is in a signed tree."""

    index: int
    entry: bytes  # the stored leaf: ciphertext plus metadata
    proof: list[bytes]
    checkpoint: Checkpoint

    def verify(self, public_key: bytes) -> bool:
        cp = self.checkpoint
        return cp.verify(public_key) and verify_inclusion(
            self.entry, self.index, cp.size, self.proof, cp.root
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "entry": self.entry.hex(),
            "proof": [p.hex() for p in self.proof],
            "checkpoint": self.checkpoint.to_json(),
        }


@dataclass(frozen=True)
class AuditEntry:
    index: int
    time_unix_ns: int
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _anchor(cp: Checkpoint | None) -> tuple[bytes, int, bytes, int, bytes] | None:
    if cp is None:
        return None
    return (cp.ledger_id, cp.size, cp.root, cp.time_unix_ns, cp.signature)


def verify_ledger(
    path: str | os.PathLike[str],
    public_key: bytes | None = None,
    keyring: Keyring | None = None,
    *,
    anchor: Checkpoint | None = None,
) -> VerifyReport:
    """Verify a ledger directory without opening it for writing (nothing is repaired).

    Pass the ``public_key`` you trust (not only the one stored beside the data) to check
    checkpoint signatures, and the ``keyring`` to authenticate every envelope as well.
    With ``anchor``, a checkpoint of this ledger kept elsewhere, also check its signature and
    prove (RFC 9162 consistency proof to the newest signed checkpoint) that the ledger
    extends it. Raises :class:`~system0.errors.IntegrityError` naming the first bad entry,
    or why the ledger does not extend the anchor.
    """
    return _core.ledger_verify(Path(path), public_key, keyring, _anchor(anchor))


class AuditLedger:
    """An open ledger directory. Thread-safe; many threads may append at once."""

    def __init__(self, core: _core.Ledger, keyring: Keyring | None) -> None:
        self._core = core
        self._keyring = keyring

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        keyring: Keyring | None = None,
        signing_key: SigningKey | None = None,
        fsync: FsyncPolicy = "always",
        fsync_interval_s: float = 0.05,
        segment_bytes: int = 256 << 20,
    ) -> AuditLedger:
        """Open (or create) the ledger in directory ``path``.

        ``keyring`` is needed to append and read; ``signing_key`` (the ledger's identity,
        recorded at creation) to sign checkpoints. Without either the ledger is read-only
        for auditing.
        """
        core = _core.Ledger(
            Path(path),
            keyring=keyring,
            signing_key=signing_key,
            fsync=fsync,
            fsync_interval_s=fsync_interval_s,
            segment_bytes=segment_bytes,
        )
        if core.recovery is not None:
            cut, index, segment = core.recovery
            _log.warning(
                "audit ledger %s: cut a torn tail of %d bytes at entry %d in %s (a write "
                "interrupted by a crash; entries from %d on were never acknowledged as durable)",
                os.fspath(path),
                cut,
                index,
                segment,
                index,
            )
        return cls(core, keyring)

    def __enter__(self) -> AuditLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Sync everything appended (the files stay valid without it)."""
        self._core.sync()

    def __repr__(self) -> str:
        return f"AuditLedger(path={os.fspath(self.path)!r}, size={self.size})"

    @property
    def path(self) -> Path:
        return self._core.path

    @property
    def size(self) -> int:
        return self._core.size

    @property
    def ledger_id(self) -> bytes:
        return self._core.ledger_id

    @property
    def public_key(self) -> bytes | None:
        return self._core.public_key

    @property
    def recovery(self) -> tuple[int, int, str] | None:
        """``(bytes_cut, first_lost_index, segment)`` if opening cut a torn tail, else None."""
        return self._core.recovery

    def append(self, entry: bytes | Mapping[str, Any]) -> int:
        """Append one entry (bytes, or a mapping stored as canonical JSON); returns its index."""
        data = entry if isinstance(entry, bytes) else _canonical(entry)
        return self._core.append(data)

    def append_many(self, entries: Iterable[bytes | Mapping[str, Any]]) -> int:
        """Append entries in order with one commit (one fsync); returns the first index."""
        batch = [e if isinstance(e, bytes) else _canonical(e) for e in entries]
        return self._core.append_batch(batch)

    def log_data_access(
        self,
        subject: str,
        resource: str,
        action: str,
        decision: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Record that ``subject`` asked to ``action`` on ``resource`` and got ``decision``."""
        return self.append(
            {
                "type": "data_access",
                "subject": subject,
                "resource": resource,
                "action": action,
                "decision": decision,
                "metadata": dict(metadata or {}),
            }
        )

    def read(self, index: int) -> AuditEntry:
        """Decrypt entry ``index`` (needs the keyring)."""
        t, data = self._core.read(index)
        return AuditEntry(index, t, data)

    def raw_entry(self, index: int) -> bytes:
        """The stored leaf of entry ``index``: what the tree hashes, readable without keys."""
        return self._core.raw_entry(index)

    def sync(self) -> None:
        self._core.sync()

    def root(self, size: int | None = None) -> bytes:
        return self._core.root_at(self.size if size is None else size)

    def checkpoint(self) -> Checkpoint:
        """Sign and record (size, root, time) of the tree now."""
        return Checkpoint(self.ledger_id, *self._core.checkpoint())

    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint(self.ledger_id, *c) for c in self._core.checkpoints()]

    def inclusion_proof(self, index: int, checkpoint: Checkpoint | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``checkpoint`` (default: a new one)."""
        cp = checkpoint or self.checkpoint()
        return InclusionProof(
            index, self.raw_entry(index), self._core.inclusion_proof(index, cp.size), cp
        )

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 proof that the tree of ``size`` extends the tree of ``old_size``."""
        return self._core.consistency_proof(old_size, self.size if size is None else size)

    def verify(
        self,
        public_key: bytes | None = None,
        *,
        deep: bool = True,
        anchor: Checkpoint | None = None,
    ) -> VerifyReport:
        """Stream-verify the files: framing, order, hash chain, checkpoints, (``deep``, with a
        keyring) every envelope and (``anchor``) consistency with a kept checkpoint. Raises
        IntegrityError naming the first bad entry."""
        return self._core.verify(public_key, deep, _anchor(anchor))


__all__ = [
    "AnchorCheck",
    "AuditEntry",
    "AuditLedger",
    "Checkpoint",
    "InclusionProof",
    "IntegrityError",
    "VerifyReport",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
]
