"""The ``local`` tier: SQLite in WAL mode, the embedded default for hot, recent data.

No server, no configuration: one file. WAL lets readers proceed while a writer commits, and
``synchronous=FULL`` makes a returned ``put`` durable across power loss, which is what lets the
router acknowledge a sample. One connection guarded by a lock: SQLite serialises writers anyway,
and the blobs are large enough that the lock is never the bottleneck.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from system0.data.storage.segments import check_blob_id, check_dataset
from system0.errors import NotFound, Unavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    dataset TEXT NOT NULL,
    id TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (dataset, id)
)
"""


class SQLiteBackend:
    """Blobs in one SQLite file (WAL). ``path=":memory:"`` is refused: the tier must be durable."""

    kind = "sqlite"
    usd_per_tib_scanned = 0.0

    def __init__(self, path: str | os.PathLike[str], *, name: str = "local") -> None:
        self.name = name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as e:
            raise Unavailable(
                f"SQLite storage at {self.path} could not be opened: {e}; check that the "
                "directory is writable and the file is not corrupt"
            ) from e
        self._lock = threading.Lock()

    def put(self, dataset: str, blob_id: str, data: bytes) -> None:
        check_dataset(dataset)
        check_blob_id(blob_id)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO blobs (dataset, id, data) VALUES (?, ?, ?)",
                    (dataset, blob_id, data),
                )
        except sqlite3.Error as e:
            raise Unavailable(
                f"SQLite storage at {self.path} refused the write of {blob_id[:12]}: {e}"
            ) from e

    def get(self, dataset: str, blob_id: str) -> bytes:
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT data FROM blobs WHERE dataset = ? AND id = ?", (dataset, blob_id)
                ).fetchone()
        except sqlite3.Error as e:
            raise Unavailable(f"SQLite storage at {self.path} could not be read: {e}") from e
        if row is None:
            raise NotFound(f"blob {self.locate(dataset, blob_id)} does not exist")
        data: bytes = row[0]
        return data

    def delete(self, dataset: str, blob_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blobs WHERE dataset = ? AND id = ?", (dataset, blob_id))

    def list(self, dataset: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM blobs WHERE dataset = ? ORDER BY id", (dataset,)
            ).fetchall()
        return [r[0] for r in rows]

    def locate(self, dataset: str, blob_id: str) -> str:
        return f"{self.path}#blobs/{dataset}/{blob_id}"

    def ping(self) -> None:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise Unavailable(f"SQLite storage at {self.path} is not usable: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._db.close()


__all__ = ["SQLiteBackend"]
