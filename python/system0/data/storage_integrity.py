"""Verifying stored data end to end, and exporting a version to a Parquet file.

``verify`` re-reads every blob a version (or every version) references and checks, in order:
the stored bytes' SHA-256 and length against the catalog (catches a corrupt or replaced file;
for a plaintext segment that hash is also its id in the manifest), decryption (catches a wrong
key or tampering, for encrypted datasets), that the blob decodes as Parquet, and that every
segment's rows lie inside its blob and match the manifest. The first failure raises
``IntegrityError`` naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from system0.data.storage_segments import decode_segment
from system0.errors import Error, IntegrityError

if TYPE_CHECKING:
    from system0.data.storage import ScalableStorage


@dataclass
class VerifyReport:
    dataset: str
    versions: int = 0
    blobs: int = 0
    segments: int = 0
    rows: int = 0
    bytes: int = 0
    locations: list[str] = field(default_factory=list)


def verify(storage: ScalableStorage, dataset: str, version: str | None = None) -> VerifyReport:
    versions = (
        [storage.resolve(dataset, version)] if version is not None else storage.versions(dataset)
    )
    report = VerifyReport(dataset, versions=len(versions))
    placements = storage.catalog.placements(dataset)
    segments = {s.id: s for v in versions for s in v.manifest.segments}
    checked: dict[tuple[str, str], int] = {}
    for p in placements:
        if p.segment not in segments or p.backend not in storage.backends:
            continue
        backend = storage.backends[p.backend]
        where = backend.locate(dataset, p.blob)
        key = (p.backend, p.blob)
        if key not in checked:
            raw = storage._fetch_blob(dataset, p)  # raises IntegrityError naming the file
            try:
                plain = storage._decode_blob(dataset, p, raw)
                rows = decode_segment(plain).num_rows
            except IntegrityError:
                raise
            except Error as e:
                raise IntegrityError(f"{where}: could not be decrypted: {e}") from e
            except Exception as e:  # pyarrow's own errors: the bytes are not Parquet
                raise IntegrityError(f"{where}: not a readable Parquet segment: {e}") from e
            checked[key] = rows
            report.blobs += 1
            report.bytes += len(raw)
            report.locations.append(where)
        if p.row_offset + p.rows > checked[key] or p.rows != segments[p.segment].rows:
            raise IntegrityError(
                f"{where}: segment {p.segment[:12]} claims rows [{p.row_offset}, "
                f"{p.row_offset + p.rows}) of {checked[key]} (manifest: {segments[p.segment].rows})"
            )
        report.segments += 1
        report.rows += p.rows
    missing = set(segments) - {p.segment for p in placements if p.backend in storage.backends}
    if missing:
        raise IntegrityError(
            f"dataset {dataset!r}: segment(s) {', '.join(sorted(m[:12] for m in missing))} "
            "are listed in a manifest but stored on no configured tier"
        )
    storage._audited("verify", dataset, version or "all", {"blobs": report.blobs})
    return report


def export_parquet(
    storage: ScalableStorage,
    dataset: str,
    path: str | os.PathLike[str],
    *,
    version: str | None = None,
    compression: str = "zstd",
) -> int:
    """Write every row of a version (commit order) to one Parquet file; returns rows written.

    The file is written beside ``path`` and renamed into place, so a crash never leaves a
    truncated export under the final name.
    """
    table = storage.read(dataset, version=version)
    final = Path(path)
    tmp = final.with_name(final.name + ".tmp")
    pq.write_table(table, tmp, compression=compression)
    os.replace(tmp, final)
    rows: int = table.num_rows
    return rows


__all__ = ["VerifyReport", "export_parquet", "verify"]
