"""What every storage backend is: a durable, content-addressed store of immutable blobs.

A *segment* is a run of samples committed together, encoded once as Parquet bytes and named by
the SHA-256 of those bytes. Every backend keeps the same bytes (optionally encrypted), so a
segment moves between tiers without being re-encoded, and a checksum recorded at write time is
verified at read time wherever the bytes live. Backends know nothing of versions, routing or
schemas: the catalog (``versions``) and the router (``router``) do. That keeps the one
conformance suite small and the same for SQLite, DuckDB/Parquet, MongoDB and BigQuery.

The collaborators (keyring, audit ledger, telemetry) are duck-typed through the small protocols
below so that the real ``system0.security`` and ``system0.core.telemetry`` plug in unchanged.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from system0.data.serialization import decode_training_samples
from system0.data.storage.parquet import decode_segment, encode_segment
from system0.errors import ValidationError

# Datasets become file and table names: keep them to a safe, portable alphabet.
_DATASET_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}", re.ASCII)
_BLOB_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def check_dataset(name: str) -> str:
    if not isinstance(name, str) or _DATASET_RE.fullmatch(name) is None:
        raise ValidationError(
            f"dataset name {name!r} is not valid: use 1 to 64 characters of a-z, 0-9, '_', '.', "
            "'-', starting with a letter or digit"
        )
    return name


def check_blob_id(blob_id: str) -> str:
    if not isinstance(blob_id, str) or _BLOB_RE.fullmatch(blob_id) is None:
        raise ValidationError(f"blob id {blob_id!r} is not a lowercase hex SHA-256 digest")
    return blob_id


def sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def schema_fingerprint(schema: pa.Schema) -> str:
    """SHA-256 of the schema's Arrow IPC form (field names, types, nullability, metadata)."""
    return sha256(schema.serialize().to_pybytes())


def as_table(samples: Any) -> pa.Table:
    """Arrow in any of its forms (Table, RecordBatch, the PyCapsule protocols) as a Table."""
    if isinstance(samples, pa.Table):
        return samples
    if isinstance(samples, pa.RecordBatch):
        return pa.Table.from_batches([samples])
    if hasattr(samples, "__arrow_c_stream__"):
        return pa.table(samples)
    if hasattr(samples, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(samples)])
    if isinstance(samples, list) and samples and all(hasattr(s, "model_dump") for s in samples):
        decoded = decode_training_samples([s.model_dump_json().encode() for s in samples])
        return as_table(decoded)
    raise ValidationError(
        f"store() takes an Arrow Table or RecordBatch (or an object exporting "
        f"__arrow_c_stream__), not {type(samples).__name__}"
    )


@runtime_checkable
class Backend(Protocol):
    """A durable blob store. ``put`` returns only once the bytes survive a crash."""

    name: str  # the tier it serves: "local", "analytical", "distributed", "cloud"
    kind: str  # the technology: "sqlite", "duckdb-parquet", "mongodb", "bigquery"
    usd_per_tib_scanned: float  # 0 where queries cost nothing but machine time

    def put(self, dataset: str, blob_id: str, data: bytes) -> None:
        """Store ``data`` under ``blob_id``; idempotent (the id is the content's hash)."""

    def get(self, dataset: str, blob_id: str) -> bytes:
        """The bytes stored under ``blob_id``; ``NotFound`` naming the location if absent."""
        ...

    def delete(self, dataset: str, blob_id: str) -> None:
        """Remove the blob; deleting an absent blob is not an error."""

    def list(self, dataset: str) -> list[str]:
        """Every blob id stored for ``dataset``, sorted."""
        ...

    def locate(self, dataset: str, blob_id: str) -> str:
        """Where the blob lives, for humans and error messages (a path, a table, a URI)."""
        ...

    def ping(self) -> None:
        """Raise ``Unavailable`` with the reason if the backend cannot be reached."""

    def close(self) -> None: ...


class KeyringLike(Protocol):
    """``system0.security.encryption.Keyring``: AEAD with associated data."""

    def encrypt(self, data: bytes, aad: bytes = b"") -> bytes: ...

    def decrypt(self, envelope: bytes, aad: bytes = b"") -> bytes: ...


__all__ = [
    "Backend",
    "KeyringLike",
    "as_table",
    "check_blob_id",
    "check_dataset",
    "decode_segment",
    "encode_segment",
    "schema_fingerprint",
    "sha256",
]
