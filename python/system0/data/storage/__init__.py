"""Tiered, versioned storage of training samples (``system0.data.storage``).

``ScalableStorage`` (in ``router``) routes each operation to a tier by cost and latency; the
parts are modules of one concept each: ``policy`` (routing rules and query costs),
``segments`` (what every backend is) and ``parquet`` (the segment encoding), ``blobs`` (put,
fetch-and-verify, encryption at rest, audit), ``versions`` (the catalog), ``reader`` and
``prefetch`` (deterministic batches), ``check`` (the contract on write), ``compaction``,
``integrity`` (verify and export), ``schema`` (the sample schema and synthetic data), ``cli``
(``system0 data ...``) and ``backends/`` (SQLite, DuckDB/Parquet, MongoDB, BigQuery). Modules
inside the package import each other directly, never through this facade.
"""

from system0.data.storage.blobs import BlobStore
from system0.data.storage.compaction import CompactionReport
from system0.data.storage.integrity import VerifyReport
from system0.data.storage.policy import QueryCost, Route, StoragePolicy, Tier
from system0.data.storage.reader import Pin, PinnedReader
from system0.data.storage.router import DEFAULT_ORDER, ScalableStorage
from system0.data.storage.segments import Backend, as_table
from system0.data.storage.versions import Version

__all__ = [
    "DEFAULT_ORDER",
    "Backend",
    "BlobStore",
    "CompactionReport",
    "Pin",
    "PinnedReader",
    "QueryCost",
    "Route",
    "ScalableStorage",
    "StoragePolicy",
    "Tier",
    "VerifyReport",
    "Version",
    "as_table",
]
