"""The ``analytical`` tier: Parquet files queried by DuckDB, for scans and aggregations.

Each blob is one Parquet file, ``<root>/<dataset>/<blob id>.parquet``, written to a temporary
name, fsynced and renamed into place: a reader never sees half a file, and a crash leaves at
most a stray ``.tmp`` that ``put`` ignores and ``sweep_temporaries`` removes. Scans and
aggregations go to DuckDB over the files themselves (``query``), so columns and row groups a
query does not need are never read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from system0.data.storage.segments import check_blob_id, check_dataset, sha256
from system0.errors import NotFound, Unavailable, ValidationError


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _arrow(relation: Any) -> pa.Table:
    """A relation's rows as Arrow (``to_arrow_table`` in DuckDB 1.4+, ``arrow`` before)."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    result = fetch()
    return result if isinstance(result, pa.Table) else result.read_all()


class DuckDBBackend:
    """Parquet files under ``root``; DuckDB (in process, no server) answers queries over them."""

    kind = "duckdb-parquet"
    usd_per_tib_scanned = 0.0

    def __init__(self, root: str | os.PathLike[str], *, name: str = "analytical") -> None:
        self.name = name
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise Unavailable(f"Parquet storage at {self.root} cannot be created: {e}") from e
        self._local = threading.local()

    def _dir(self, dataset: str) -> Path:
        return self.root / check_dataset(dataset)

    def path(self, dataset: str, blob_id: str) -> Path:
        return self._dir(dataset) / f"{check_blob_id(blob_id)}.parquet"

    def put(self, dataset: str, blob_id: str, data: bytes) -> None:
        final = self.path(dataset, blob_id)
        if final.exists() and final.stat().st_size == len(data):
            if sha256(final.read_bytes()) == blob_id:
                return  # content-addressed: the same id already holds these bytes, intact
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f"{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def get(self, dataset: str, blob_id: str) -> bytes:
        path = self.path(dataset, blob_id)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob file {path} does not exist") from None

    def delete(self, dataset: str, blob_id: str) -> None:
        self.path(dataset, blob_id).unlink(missing_ok=True)

    def list(self, dataset: str) -> list[str]:
        d = self._dir(dataset)
        if not d.is_dir():
            return []
        return sorted(p.name[: -len(".parquet")] for p in d.glob("*.parquet"))

    def locate(self, dataset: str, blob_id: str) -> str:
        return str(self.path(dataset, blob_id))

    def sweep_temporaries(self, dataset: str) -> int:
        """Remove ``.tmp`` files left by writers that crashed; returns how many."""
        d = self._dir(dataset)
        gone = 0
        for p in d.glob("*.tmp") if d.is_dir() else []:
            p.unlink(missing_ok=True)
            gone += 1
        return gone

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise Unavailable(f"Parquet storage at {self.root} is not writable")

    def _con(self) -> Any:
        con = getattr(self._local, "con", None)
        if con is None:
            import duckdb

            con = duckdb.connect()
            self._local.con = con
        return con

    def query(self, dataset: str, blob_ids: Sequence[str], sql: str) -> pa.Table:
        """Run ``sql`` over the given blobs, exposed to the query as the view ``samples``.

        Only for unencrypted datasets (an encrypted file is not Parquet). ``sql`` is trusted
        code from the caller, as any SQL handed to a database is.
        """
        if not blob_ids:
            raise ValidationError(f"dataset {dataset!r}: no segments to query")
        files = [str(self.path(dataset, b)) for b in blob_ids]
        con = self._con()
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW samples AS SELECT * FROM read_parquet([{listing}])"
        )
        try:
            result: pa.Table = _arrow(con.sql(sql))
        finally:
            con.execute("DROP VIEW IF EXISTS samples")
        return result

    def query_table(self, table: pa.Table, sql: str) -> pa.Table:
        """Run ``sql`` over an in-memory Arrow table, exposed as the view ``samples``."""
        con = self._con()
        con.register("samples", table)
        try:
            result: pa.Table = _arrow(con.sql(sql))
        finally:
            con.unregister("samples")
        return result

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


__all__ = ["DuckDBBackend"]
