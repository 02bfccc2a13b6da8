"""The ``cloud`` tier: BigQuery through google-cloud-bigquery, for cold, archived data.

Blobs live in one table ``<project>.<bq_dataset>.<table>`` with columns (dataset, blob, part,
parts, data BYTES), written by load jobs (atomic per job: a failed job adds no row). Reads are
parameterised queries; each is billed by bytes scanned, which ``usd_per_tib_scanned`` turns into
the estimated cost that the router reports per query. Configured by a project
(``SYSTEM0_BIGQUERY_PROJECT`` in the tests) and application-default credentials.
"""

from __future__ import annotations

import base64
from typing import Any

from system0.data.storage.segments import check_blob_id, check_dataset
from system0.errors import NotFound, Unavailable

PART_BYTES = 8 * 1024 * 1024
ON_DEMAND_USD_PER_TIB = 6.25  # BigQuery on-demand analysis price (US multi-region)


class BigQueryBackend:
    kind = "bigquery"

    def __init__(
        self,
        project: str,
        *,
        bq_dataset: str = "system0",
        table: str = "storage_blobs",
        location: str = "US",
        name: str = "cloud",
        usd_per_tib_scanned: float = ON_DEMAND_USD_PER_TIB,
    ) -> None:
        try:
            from google.cloud import bigquery
        except ImportError as e:
            raise Unavailable(
                "the BigQuery tier needs google-cloud-bigquery: pip install 'system0[bigquery]'"
            ) from e
        self._bq: Any = bigquery
        self.name = name
        self.usd_per_tib_scanned = usd_per_tib_scanned
        self._table_id = f"{project}.{bq_dataset}.{table}"
        try:
            self._client: Any = bigquery.Client(project=project, location=location)
            self._client.create_dataset(f"{project}.{bq_dataset}", exists_ok=True)
            schema = [
                bigquery.SchemaField("dataset", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("blob", "STRING", mode="REQUIRED"),
                bigquery.SchemaField("part", "INT64", mode="REQUIRED"),
                bigquery.SchemaField("parts", "INT64", mode="REQUIRED"),
                bigquery.SchemaField("data", "BYTES", mode="REQUIRED"),
            ]
            spec = bigquery.Table(self._table_id, schema=schema)
            # clustered by (dataset, blob): a lookup of one blob scans (and bills) its blocks,
            # not the whole table
            spec.clustering_fields = ["dataset", "blob"]
            self._client.create_table(spec, exists_ok=True)
        except Exception as e:  # google.api_core raises many types; all mean unreachable
            raise Unavailable(
                f"BigQuery table {self._table_id} is unreachable: {e}; check "
                "SYSTEM0_BIGQUERY_PROJECT and application-default credentials"
            ) from e
        self.last_bytes_billed = 0

    def _query(self, sql: str, **params: Any) -> list[Any]:
        bq = self._bq
        config = bq.QueryJobConfig(
            query_parameters=[
                bq.ScalarQueryParameter(k, "STRING", v) for k, v in sorted(params.items())
            ]
        )
        try:
            job = self._client.query(sql, job_config=config)
            rows = list(job.result())
        except Exception as e:
            raise Unavailable(f"BigQuery query on {self._table_id} failed: {e}") from e
        self.last_bytes_billed = int(job.total_bytes_billed or 0)
        return rows

    def ping(self) -> None:
        try:
            self._client.get_table(self._table_id)
        except Exception as e:
            raise Unavailable(f"BigQuery table {self._table_id} is unreachable: {e}") from e

    def put(self, dataset: str, blob_id: str, data: bytes) -> None:
        check_dataset(dataset)
        check_blob_id(blob_id)
        if self._complete(dataset, blob_id):
            return  # content-addressed and complete already
        self.delete(dataset, blob_id)  # a partial earlier attempt
        parts = max(1, -(-len(data) // PART_BYTES))
        rows = [
            {
                "dataset": dataset,
                "blob": blob_id,
                "part": i,
                "parts": parts,
                "data": base64.b64encode(data[i * PART_BYTES : (i + 1) * PART_BYTES]).decode(),
            }
            for i in range(parts)
        ]
        try:
            self._client.load_table_from_json(rows, self._table_id).result()
        except Exception as e:
            raise Unavailable(f"load into {self.locate(dataset, blob_id)} failed: {e}") from e

    def _complete(self, dataset: str, blob_id: str) -> bool:
        """Whether every part is stored; reads only the small columns (cheap to scan)."""
        rows = self._query(
            f"SELECT part, parts FROM `{self._table_id}` WHERE dataset = @dataset AND blob = @blob",
            dataset=dataset,
            blob=blob_id,
        )
        return bool(rows) and len({r["part"] for r in rows}) == rows[0]["parts"]

    def _parts(self, dataset: str, blob_id: str) -> list[Any]:
        rows = self._query(
            f"SELECT part, parts, data FROM `{self._table_id}` "
            "WHERE dataset = @dataset AND blob = @blob ORDER BY part",
            dataset=dataset,
            blob=blob_id,
        )
        if not rows or len(rows) != rows[0]["parts"]:
            return []
        return rows

    def get(self, dataset: str, blob_id: str) -> bytes:
        rows = self._parts(dataset, blob_id)
        if not rows:
            raise NotFound(f"blob {self.locate(dataset, blob_id)} does not exist (or is partial)")
        return b"".join(bytes(r["data"]) for r in rows)

    def delete(self, dataset: str, blob_id: str) -> None:
        self._query(
            f"DELETE FROM `{self._table_id}` WHERE dataset = @dataset AND blob = @blob",
            dataset=dataset,
            blob=blob_id,
        )

    def list(self, dataset: str) -> list[str]:
        rows = self._query(
            f"SELECT DISTINCT blob FROM `{self._table_id}` WHERE dataset = @dataset AND part = 0",
            dataset=dataset,
        )
        return sorted(r["blob"] for r in rows)

    def locate(self, dataset: str, blob_id: str) -> str:
        return f"bigquery {self._table_id}/{dataset}/{blob_id}"

    def close(self) -> None:
        self._client.close()


__all__ = ["BigQueryBackend"]
