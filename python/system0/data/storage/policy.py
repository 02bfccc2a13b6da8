"""Routing policy, routing decisions with their reasons, and the cost of each query.

The router never decides silently: every decision is a ``Route`` (the tier, the backend kind,
and the reasons in words), and ``ScalableStorage.explain`` returns exactly the ``Route`` that the
operation itself would take. Every query produces a ``QueryCost`` (backend, rows, bytes,
milliseconds, estimated USD) that goes to the telemetry registry when one is present and to any
sink the caller adds.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from system0.core import telemetry
from system0.errors import ConfigError

Tier = Literal["local", "analytical", "distributed", "cloud"]
Pattern = Literal["store", "scan", "lookup"]
TIERS: tuple[Tier, ...] = ("local", "analytical", "distributed", "cloud")
_TIB = float(1 << 40)


@dataclass(frozen=True)
class StoragePolicy:
    """How the router places writes and serves reads. Every field has a serverless default."""

    hot_max_rows: int = 50_000  # a batch with fewer rows (and bytes) lands in the hot tier
    hot_max_bytes: int = 32 << 20
    hot_max_age_s: float = 3600.0  # compaction moves hot segments older than this ...
    hot_min_reads: int = 4  # ... unless read at least this often since they were written
    compression: Literal["none", "zstd", "lz4"] = "lz4"
    shared_datasets: tuple[str, ...] = ()  # written to the distributed tier when configured
    archive_datasets: tuple[str, ...] = ()  # written to the cloud tier when configured
    scan_order: tuple[Tier, ...] = ("analytical", "local", "distributed", "cloud")
    lookup_order: tuple[Tier, ...] = ("local", "analytical", "distributed", "cloud")
    prefetch_batches: int = 4
    prefetch_max_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        for name in ("hot_max_rows", "hot_max_bytes", "hot_min_reads", "prefetch_batches"):
            if getattr(self, name) < 0:
                raise ConfigError(f"storage policy: {name} must be >= 0, not {getattr(self, name)}")
        if self.prefetch_max_bytes <= 0:
            raise ConfigError("storage policy: prefetch_max_bytes must be > 0")
        for name in ("scan_order", "lookup_order"):
            bad = [t for t in getattr(self, name) if t not in TIERS]
            if bad:
                raise ConfigError(
                    f"storage policy: {name} names unknown tiers {bad}; use {', '.join(TIERS)}"
                )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> StoragePolicy:
        """Build from a config mapping; unknown keys are refused, never ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"storage policy: unknown keys {unknown}; known keys: {', '.join(sorted(known))}"
            )
        args: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
        }
        return cls(**args)

    @classmethod
    def from_config(cls, storage: Any) -> StoragePolicy:
        """From ``AIConfig.storage`` (``system0.core.config.StorageConfig``) or ``AIConfig``."""
        storage = getattr(storage, "storage", storage)
        compression: Any = getattr(storage, "compression", "lz4")
        return cls(
            hot_max_bytes=int(getattr(storage, "hot_tier_max_bytes", cls.hot_max_bytes)),
            compression=compression,
            prefetch_batches=max(1, int(getattr(storage, "prefetch_batches", 4))),
        )


@dataclass(frozen=True)
class Route:
    """Where an operation goes and why; ``explain`` returns the same object the op uses."""

    pattern: Pattern
    tier: Tier
    backend: str  # the backend kind: sqlite, duckdb-parquet, mongodb, bigquery
    reasons: tuple[str, ...]
    fallback: Tier | None = None

    def __str__(self) -> str:
        text = f"{self.pattern} -> {self.tier} ({self.backend}): " + "; ".join(self.reasons)
        if self.fallback:
            text += f"; if {self.tier} is unreachable: {self.fallback}"
        return text


def route_store(
    p: StoragePolicy, kinds: Mapping[Tier, str], dataset: str, rows: int, nbytes: int
) -> Route:
    """Where a write of ``rows`` rows (``nbytes`` in Arrow) goes, given the configured tiers."""
    reasons: list[str] = []
    tier: Tier
    if dataset in p.archive_datasets and "cloud" in kinds:
        tier = "cloud"
        reasons.append(f"dataset {dataset!r} is listed in archive_datasets")
    elif dataset in p.shared_datasets and "distributed" in kinds:
        tier = "distributed"
        reasons.append(f"dataset {dataset!r} is listed in shared_datasets")
    elif rows >= p.hot_max_rows or nbytes >= p.hot_max_bytes:
        tier = "analytical"
        reasons.append(
            f"large batch ({rows} rows, {nbytes} bytes) reaches hot_max_rows={p.hot_max_rows} "
            f"or hot_max_bytes={p.hot_max_bytes}: written straight to the columnar scan tier"
        )
    else:
        tier = "local"
        reasons.append(
            f"small batch ({rows} rows, {nbytes} bytes) below hot_max_rows={p.hot_max_rows} "
            f"and hot_max_bytes={p.hot_max_bytes}: hot tier for recent data and point "
            f"lookups; compaction moves it to analytical after {p.hot_max_age_s:g} s unless "
            f"read >= {p.hot_min_reads} times"
        )
    for role, t in (("archive_datasets", "cloud"), ("shared_datasets", "distributed")):
        if dataset in getattr(p, role) and t not in kinds:
            reasons.append(f"listed in {role} but no {t} tier is configured")
    fallback: Tier = "analytical" if tier == "local" else "local"
    return Route("store", tier, kinds[tier], tuple(reasons), fallback)


def route_read(
    kinds: Mapping[Tier, str],
    pattern: Pattern,
    order: Sequence[Tier],
    chosen: Sequence[tuple[str, int]],
) -> Route:
    """A read's route: ``chosen`` holds (tier, rows) of the placement picked per segment."""
    by_tier: dict[str, list[int]] = {}
    for tier_name, rows in chosen:
        counts = by_tier.setdefault(tier_name, [0, 0])
        counts[0] += 1
        counts[1] += rows
    reasons = [f"{pattern} prefers tiers in the order {', '.join(order)} (policy)"]
    reasons += [f"{n} segment(s), {r} rows from {t}" for t, (n, r) in sorted(by_tier.items())]
    main: Tier = order[0]
    for tier in order:
        if by_tier.get(tier, [0, -1])[1] > by_tier.get(main, [0, -1])[1]:
            main = tier
    return Route(pattern, main, kinds[main], tuple(reasons))


@dataclass(frozen=True)
class QueryCost:
    """What one query cost: the telemetry record the issue asks for."""

    op: str
    dataset: str
    backend: str  # tier name
    rows: int
    bytes: int
    ms: float
    usd: float

    @staticmethod
    def estimate_usd(bytes_scanned: int, usd_per_tib: float) -> float:
        return bytes_scanned / _TIB * usd_per_tib


Sink = Callable[[QueryCost], None]


@dataclass
class CostLedger:
    """Keeps recent query costs in memory and forwards them to telemetry and sinks."""

    keep: int = 1024
    sinks: list[Sink] = field(default_factory=list)
    _recent: list[QueryCost] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _metrics: Any = None

    def __post_init__(self) -> None:
        self._metrics = _telemetry_metrics()

    def record(self, cost: QueryCost) -> None:
        with self._lock:
            self._recent.append(cost)
            del self._recent[: max(0, len(self._recent) - self.keep)]
        if self._metrics is not None:
            _publish(self._metrics, cost)
        for sink in self.sinks:
            sink(cost)

    def recent(self) -> list[QueryCost]:
        with self._lock:
            return list(self._recent)


def _telemetry_metrics() -> Any:
    """The registry's metric families for storage queries (get-or-create, so shared)."""
    labels = ("op", "backend")
    return (
        telemetry.counter("system0_storage_queries", labels, "storage queries"),
        telemetry.counter("system0_storage_rows", labels, "rows read or written"),
        telemetry.counter("system0_storage_bytes", labels, "bytes read or written"),
        telemetry.histogram("system0_storage_query_us", labels, "query latency", unit="us"),
        telemetry.counter("system0_storage_cost_nanousd", labels, "estimated cloud cost, 1e-9 USD"),
    )


def _publish(metrics: Any, cost: QueryCost) -> None:
    queries, rows, nbytes, latency, usd = metrics
    key = (cost.op, cost.backend)
    queries.labels(*key).inc(1)
    rows.labels(*key).inc(cost.rows)
    nbytes.labels(*key).inc(cost.bytes)
    latency.labels(*key).record(int(cost.ms * 1000))
    usd.labels(*key).inc(round(cost.usd * 1e9))


__all__ = [
    "TIERS",
    "CostLedger",
    "Pattern",
    "QueryCost",
    "Route",
    "StoragePolicy",
    "Tier",
    "route_read",
    "route_store",
]
