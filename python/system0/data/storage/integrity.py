"""Verifying stored data end to end, and exporting a version to a Parquet file.

``verify`` re-reads every blob a version (or every version) references and checks, in order:
the stored bytes' SHA-256 and length against the catalog (catches a corrupt or replaced file;
for a plaintext segment that hash is also its id in the manifest), decryption (catches a wrong
key or tampering, for encrypted datasets), that the blob decodes as Parquet, and that every
segment's rows lie inside its blob and match the manifest. The first failure raises
``IntegrityError`` naming the file.

An encrypted blob's catalog checksum is of its ciphertext, so it is checked without the key.
When the key is not at hand (no keyring, or a system0 keyring without the key that sealed the
blob: absent, disabled, destroyed, or another key under the same id, told by the envelope's
public key commitment) the blob is not opened: it is listed in ``VerifyReport.unopened`` with
the reason, never reported as corrupt, and only what needs the plaintext (Parquet decoding,
rows inside the blob) is left unchecked. The sealing key present but the envelope failing to
authenticate is an ``IntegrityError``, as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from system0 import _core
from system0.data.storage.blobs import BlobStore
from system0.data.storage.segments import decode_segment
from system0.data.storage.versions import Placement
from system0.errors import Error, IntegrityError


@dataclass
class VerifyReport:
    """What ``verify`` checked: counts, the files read, and the blobs it could not open."""

    dataset: str
    versions: int = 0
    blobs: int = 0
    segments: int = 0
    rows: int = 0
    bytes: int = 0
    locations: list[str] = field(default_factory=list)
    encrypted: bool = False
    # (location, why) of each blob whose ciphertext checksum held but that was not decrypted
    # for lack of its key; its contents (Parquet, row bounds) are unchecked.
    unopened: list[tuple[str, str]] = field(default_factory=list)

    @property
    def opened(self) -> bool:
        """True when every blob was read down to its rows (decrypted where encrypted)."""
        return not self.unopened


def _missing_key(keyring: object, raw: bytes, where: str) -> str | None:
    """Why the keyring cannot open ``raw`` (an envelope whose checksum already held), or None
    when it holds the key that sealed it: then a failure to decrypt is tampering, not a lack
    of the key. A system0 keyring tells from the envelope's header alone (key id and key
    commitment); a foreign keyring names no keys, so only decrypting tells."""
    if keyring is None:
        return "no keyring was given"
    if not isinstance(keyring, _core.Keyring):
        return None
    try:
        return keyring.missing_key(raw)
    except Error as e:
        raise IntegrityError(f"{where}: not a system0 envelope: {e}") from e


def verify(blobs: BlobStore, dataset: str, version: str | None = None) -> VerifyReport:
    """Re-read and check every blob of ``version`` (all versions if None); see the module doc."""
    catalog = blobs.catalog
    versions = (
        [catalog.resolve(dataset, version)] if version is not None else catalog.versions(dataset)
    )
    report = VerifyReport(dataset, versions=len(versions))
    report.encrypted = blobs.encrypted(dataset)
    placements = catalog.placements(dataset)
    segments = {s.id: s for v in versions for s in v.manifest.segments}
    checked: dict[tuple[str, str], int | None] = {}  # None: not opened, rows unknown
    for p in placements:
        if p.segment not in segments or p.backend not in blobs.backends:
            continue
        where = blobs.locate(dataset, p)
        key = (p.backend, p.blob)
        if key not in checked:
            raw = blobs.fetch(dataset, p)  # raises IntegrityError naming the file
            why = _missing_key(blobs.keyring, raw, where) if report.encrypted else None
            if why is not None:
                report.unopened.append((where, why))
                checked[key] = None
            else:
                checked[key] = _rows(blobs, dataset, p, raw, where)
            report.blobs += 1
            report.bytes += len(raw)
            report.locations.append(where)
        held = checked[key]
        manifest_rows = segments[p.segment].rows
        if (held is not None and p.row_offset + p.rows > held) or p.rows != manifest_rows:
            raise IntegrityError(
                f"{where}: segment {p.segment[:12]} claims rows [{p.row_offset}, "
                f"{p.row_offset + p.rows}) of {held if held is not None else 'unknown'} "
                f"(manifest: {manifest_rows})"
            )
        report.segments += 1
        report.rows += p.rows
    missing = set(segments) - {p.segment for p in placements if p.backend in blobs.backends}
    if missing:
        raise IntegrityError(
            f"dataset {dataset!r}: segment(s) {', '.join(sorted(m[:12] for m in missing))} "
            "are listed in a manifest but stored on no configured tier"
        )
    meta = {"blobs": report.blobs, "unopened": len(report.unopened)}
    blobs.audited("verify", dataset, version or "all", meta)
    return report


def _rows(blobs: BlobStore, dataset: str, p: Placement, raw: bytes, where: str) -> int:
    """Decrypt (where encrypted) and decode one blob; its row count."""
    try:
        plain = blobs.open(dataset, p, raw)
        rows: int = decode_segment(plain).num_rows
    except IntegrityError:
        raise
    except Error as e:
        raise IntegrityError(
            f"{where}: could not be decrypted, though its ciphertext matches the catalog's "
            f"checksum: {e}"
        ) from e
    except Exception as e:  # pyarrow's own errors: the bytes are not Parquet
        raise IntegrityError(f"{where}: not a readable Parquet segment: {e}") from e
    return rows


def export_parquet(table: pa.Table, path: str | os.PathLike[str], compression: str = "zstd") -> int:
    """Write ``table`` (a version, as ``ScalableStorage.read`` returns it) to one Parquet file;
    returns the rows written.

    The file is written beside ``path`` and renamed into place, so a crash never leaves a
    truncated export under the final name.
    """
    final = Path(path)
    tmp = final.with_name(final.name + ".tmp")
    pq.write_table(table, tmp, compression=compression)
    os.replace(tmp, final)
    rows: int = table.num_rows
    return rows


__all__ = ["VerifyReport", "export_parquet", "verify"]
