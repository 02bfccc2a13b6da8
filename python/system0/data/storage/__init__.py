"""Tiered, versioned storage of training samples (``system0.data.storage``).

``ScalableStorage`` (in ``router``) routes each operation to a tier by cost and latency; the
parts are modules of one concept each: ``policy`` (routing rules and query costs),
``segments`` (what every backend is) and ``parquet`` (the segment encoding), ``blobs`` (put,
fetch-and-verify, encryption at rest, audit), ``versions`` (the catalog), ``reader`` and
``prefetch`` (deterministic batches), ``check`` (the contract on write), ``compaction``,
``integrity`` (verify and export), ``schema`` (the sample schema and synthetic data), ``cli``
(``system0 data ...``) and ``backends/`` (SQLite, DuckDB/Parquet, MongoDB, BigQuery). Modules
inside the package import each other directly, never through this facade, which loads
each name on first use (``system0.facade``): ``system0 data --help`` needs no pyarrow.
"""

from typing import TYPE_CHECKING

from system0.facade import lazy_exports

if TYPE_CHECKING:
    from system0.data.storage.blobs import (
        BlobStore as BlobStore,
    )
    from system0.data.storage.compaction import (
        CompactionReport as CompactionReport,
    )
    from system0.data.storage.integrity import (
        VerifyReport as VerifyReport,
    )
    from system0.data.storage.policy import (
        QueryCost as QueryCost,
    )
    from system0.data.storage.policy import (
        Route as Route,
    )
    from system0.data.storage.policy import (
        StoragePolicy as StoragePolicy,
    )
    from system0.data.storage.policy import (
        Tier as Tier,
    )
    from system0.data.storage.reader import (
        Pin as Pin,
    )
    from system0.data.storage.reader import (
        PinnedReader as PinnedReader,
    )
    from system0.data.storage.router import (
        DEFAULT_ORDER as DEFAULT_ORDER,
    )
    from system0.data.storage.router import (
        ScalableStorage as ScalableStorage,
    )
    from system0.data.storage.segments import (
        Backend as Backend,
    )
    from system0.data.storage.segments import (
        as_table as as_table,
    )
    from system0.data.storage.versions import (
        Version as Version,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "system0.data.storage.blobs": ("BlobStore",),
        "system0.data.storage.compaction": ("CompactionReport",),
        "system0.data.storage.integrity": ("VerifyReport",),
        "system0.data.storage.policy": (
            "QueryCost",
            "Route",
            "StoragePolicy",
            "Tier",
        ),
        "system0.data.storage.reader": (
            "Pin",
            "PinnedReader",
        ),
        "system0.data.storage.router": (
            "DEFAULT_ORDER",
            "ScalableStorage",
        ),
        "system0.data.storage.segments": (
            "Backend",
            "as_table",
        ),
        "system0.data.storage.versions": ("Version",),
    },
)
