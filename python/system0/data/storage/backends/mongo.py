"""The ``distributed`` tier: MongoDB through pymongo, for data shared by many writers.

A blob is split into parts below MongoDB's 16 MiB document limit, each its own document
``{_id: "<dataset>/<blob>/<part>", dataset, blob, part, parts, data}``, written with
``w="majority", j=True`` so an acknowledged ``put`` survives a primary failover. A put that dies
part-way leaves parts that no catalog entry references; ``get`` refuses a blob whose parts are
incomplete, and the next ``put`` of the same id rewrites them.

Configured by a URI (``SYSTEM0_MONGO_URI`` in the tests); an unreachable server is reported at
construction as ``Unavailable`` within ``timeout_s`` rather than on the first write.
"""

from __future__ import annotations

from typing import Any

from system0.data.storage.segments import check_blob_id, check_dataset
from system0.errors import NotFound, Unavailable

PART_BYTES = 8 * 1024 * 1024


class MongoBackend:
    kind = "mongodb"
    usd_per_tib_scanned = 0.0

    def __init__(
        self,
        uri: str,
        *,
        database: str = "system0",
        collection: str = "storage_blobs",
        name: str = "distributed",
        timeout_s: float = 5.0,
    ) -> None:
        try:
            import pymongo
            from pymongo.write_concern import WriteConcern
        except ImportError as e:
            raise Unavailable("the MongoDB tier needs pymongo: pip install 'system0[mongo]'") from e
        self.name = name
        self._where = f"mongodb {database}.{collection}"
        ms = int(timeout_s * 1000)
        self._client: Any = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms * 6
        )
        self._coll: Any = self._client[database].get_collection(
            collection, write_concern=WriteConcern(w="majority", j=True)
        )
        self.ping()
        self._coll.create_index([("dataset", 1), ("blob", 1), ("part", 1)])

    def _errors(self) -> tuple[type[BaseException], ...]:
        import pymongo.errors

        return (pymongo.errors.PyMongoError,)

    def ping(self) -> None:
        try:
            self._client.admin.command("ping")
        except self._errors() as e:
            raise Unavailable(
                f"MongoDB for {self._where} is unreachable: {e}; check SYSTEM0_MONGO_URI and "
                "that the server is running"
            ) from e

    def put(self, dataset: str, blob_id: str, data: bytes) -> None:
        check_dataset(dataset)
        check_blob_id(blob_id)
        parts = max(1, -(-len(data) // PART_BYTES))
        try:
            for i in range(parts):
                chunk = data[i * PART_BYTES : (i + 1) * PART_BYTES]
                doc = {
                    "dataset": dataset,
                    "blob": blob_id,
                    "part": i,
                    "parts": parts,
                    "data": chunk,
                }
                self._coll.replace_one({"_id": f"{dataset}/{blob_id}/{i}"}, doc, upsert=True)
        except self._errors() as e:
            raise Unavailable(f"write of {self.locate(dataset, blob_id)} failed: {e}") from e

    def get(self, dataset: str, blob_id: str) -> bytes:
        try:
            docs = list(self._coll.find({"dataset": dataset, "blob": blob_id}).sort("part", 1))
        except self._errors() as e:
            raise Unavailable(f"read of {self.locate(dataset, blob_id)} failed: {e}") from e
        if not docs or len(docs) != docs[0]["parts"]:
            raise NotFound(f"blob {self.locate(dataset, blob_id)} does not exist (or is partial)")
        return b"".join(bytes(d["data"]) for d in docs)

    def delete(self, dataset: str, blob_id: str) -> None:
        try:
            self._coll.delete_many({"dataset": dataset, "blob": blob_id})
        except self._errors() as e:
            raise Unavailable(f"delete of {self.locate(dataset, blob_id)} failed: {e}") from e

    def list(self, dataset: str) -> list[str]:
        try:
            ids: list[str] = self._coll.distinct("blob", {"dataset": dataset, "part": 0})
        except self._errors() as e:
            raise Unavailable(f"listing {self._where}/{dataset} failed: {e}") from e
        return sorted(ids)

    def locate(self, dataset: str, blob_id: str) -> str:
        return f"{self._where}/{dataset}/{blob_id}"

    def close(self) -> None:
        self._client.close()


__all__ = ["MongoBackend"]
