"""Nanosecond telemetry: metrics recorded lock-free in Rust, timers, and exporters.

Metrics
    :func:`counter`, :func:`gauge` and :func:`histogram` register a metric once and return a
    handle; recording through the handle (``h.record(v)``, ``c.inc()``) never looks a name up
    and never takes a lock. With label names, the returned family hands out child handles
    through ``.labels(*values)`` or ``.labels(**kv)``; keep the child and record through it.
    A family holds at most ``max_label_sets`` distinct label sets (default 1000): one more
    raises :class:`system0.errors.CardinalityError` instead of growing without bound.
    Registering a name again with the same kind, labels and unit returns the same family;
    anything else raises :class:`system0.errors.ConfigError`. Names that Prometheus would
    refuse raise :class:`system0.errors.ValidationError`.

Histograms
    Log-linear (HDR-style) buckets: values 0..2047 exact, then 1024 buckets per power of
    two. Quantiles (``p50``, ``p90``, ``p99``, ``p999``, ``max``) are within a relative
    error of 2**-11 (0.049 %, three significant digits); min, max, count and sum are exact.
    The range is 0 to 3.6e12 units (1 ns to 1 h in ns); a larger value is clamped to 3.6e12
    and counted in ``snapshot().overflow``. NaN, infinities and negative values raise
    ``ValueError``; fractional values round to the nearest unit. Each histogram holds a
    fixed ``HISTOGRAM_BYTES`` = 270 056 bytes (33 421 64-bit buckets plus padded stripes),
    allocated zeroed once (the OS makes only the touched pages resident; a latency
    histogram typically touches a few tens of KiB). Every label set of a histogram family
    is one such histogram: size ``max_label_sets`` with that in mind.
    ``snapshot()`` returns an immutable :class:`HistogramSnapshot`; ``later.delta(earlier)``
    is what was recorded in between and ``a.merge(b)`` the union (associative, commutative).

Timers
    ``with timer(h):``, ``@timer(h)`` (sync or async functions), ``@timed("name")``, and
    ``h.record_since(start)`` with ``start = now_ns()``.

Exporters
    :func:`render_prometheus` (text exposition format 0.0.4; histograms export the fixed
    ``le`` boundaries of :func:`prometheus_le_bounds`, the 1-2-5 series from 1 to 2e12, in
    the histogram's own unit), :func:`write_jsonl` (one JSON object per metric and label
    set) and :func:`install_otel_metrics` (an OpenTelemetry MeterProvider exports our
    metrics; needs the ``otel`` extra).
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from system0._core import (
    DEFAULT_MAX_LABEL_SETS,
    HISTOGRAM_BUCKETS,
    HISTOGRAM_BYTES,
    HISTOGRAM_MAX_VALUE,
    HISTOGRAM_RELATIVE_ERROR,
    Counter,
    Gauge,
    Histogram,
    HistogramSnapshot,
    Registry,
    now_ns,
    prometheus_le_bounds,
    to_unix_ns,
)
from system0._core import default_registry as _core_default_registry
from system0.core.energy import EnergyDelta, EnergySnapshot, read_counters
from system0.errors import InvalidArgument

if TYPE_CHECKING:
    from system0.core.otel_metrics import OtelMetricsBridge

F = TypeVar("F", bound=Callable[..., Any])

_DEFAULT_REGISTRY = _core_default_registry()
# Bridges to refresh when a family is registered, so that exporters never miss one. Held
# strongly: a caller may well drop the bridge that install_otel_metrics returns.
_bridges: list[OtelMetricsBridge] = []
_bridges_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry used when no ``registry=`` is given."""
    return _DEFAULT_REGISTRY


def _labels(name: str, labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise InvalidArgument(
            f"metric {name!r}: labels must be a sequence of label names, not the string "
            f"{labels!r}; write labels=({labels!r},)"
        )
    return list(labels)


def _registered(handle: Any) -> None:
    with _bridges_lock:
        bridges = list(_bridges)
    for bridge in bridges:
        bridge.refresh()


def counter(
    name: str,
    labels: Sequence[str] = (),
    help: str = "",
    *,
    max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
    registry: Registry | None = None,
) -> Counter:
    """A counter of whole events (``inc(n=1)``); Prometheus exports it as ``<name>_total``."""
    reg = registry or _DEFAULT_REGISTRY
    c = reg.counter(name, _labels(name, labels), help, max_label_sets)
    _registered(c)
    return c


def gauge(
    name: str,
    labels: Sequence[str] = (),
    help: str = "",
    *,
    max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
    registry: Registry | None = None,
) -> Gauge:
    """A value that goes up and down (``set``, ``inc``, ``dec``); finite floats only."""
    reg = registry or _DEFAULT_REGISTRY
    g = reg.gauge(name, _labels(name, labels), help, max_label_sets)
    _registered(g)
    return g


def histogram(
    name: str,
    labels: Sequence[str] = (),
    help: str = "",
    unit: str = "ns",
    *,
    max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
    registry: Registry | None = None,
) -> Histogram:
    """A log-linear histogram of non-negative integers in ``unit`` (see the module doc)."""
    reg = registry or _DEFAULT_REGISTRY
    h = reg.histogram(name, _labels(name, labels), help, unit, max_label_sets)
    _registered(h)
    return h


class timer:  # lower-case: it reads as the verb it is used as
    """Times a block or every call of a function into a histogram, in nanoseconds.

    ``with timer(h): ...`` records once when the block exits (with ``energy=True`` the
    block's joules, or why none are readable, are in ``.energy`` afterwards);
    ``@timer(h)`` records each call of a sync or async function. The time is recorded
    whether the body returns or raises (a failing call took time too). ``elapsed_ns``
    holds the last block's duration.
    As a decorator it is safe from any number of threads and tasks; as a context manager,
    one ``timer`` object times one block at a time (make one per block: it is cheap).
    """

    __slots__ = ("_counters", "_energy", "_hist", "_start", "elapsed_ns", "energy")

    def __init__(self, hist: Histogram, *, energy: bool = False) -> None:
        if not isinstance(hist, Histogram):
            raise InvalidArgument(f"timer() needs a Histogram handle, got {type(hist).__name__}")
        self._hist = hist
        self._start = 0
        self._energy = energy
        self._counters: EnergySnapshot | None = None
        self.elapsed_ns = 0
        # With energy=True: the last block's joules, or the reason none could be read.
        self.energy: EnergyDelta | None = None

    def __enter__(self) -> timer:
        if self._energy:
            self._counters = read_counters(energy=True, cpu=False)
        self._start = now_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed_ns = max(0, now_ns() - self._start)
        self._hist.record(self.elapsed_ns)
        if self._counters is not None:
            self.energy = read_counters(energy=True, cpu=False).since(self._counters)

    def __call__(self, fn: F) -> F:
        hist = self._hist
        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = now_ns()
                try:
                    return await afn(*args, **kwargs)
                finally:
                    hist.record_since(start)

            return cast(F, timed_async)

        @functools.wraps(fn)
        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            start = now_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                hist.record_since(start)

        return cast(F, timed_sync)


def timed(name: str, help: str = "", *, registry: Registry | None = None) -> Callable[[F], F]:
    """Decorator: time every call into the histogram ``name`` (created on first use, in ns)."""
    return timer(histogram(name, help=help or f"duration of {name}", registry=registry))


def render_prometheus(registry: Registry | None = None) -> str:
    """Every metric in the Prometheus text exposition format (version 0.0.4)."""
    return (registry or _DEFAULT_REGISTRY).render_prometheus()


def _snapshot_fields(s: HistogramSnapshot) -> dict[str, Any]:
    return {
        "count": s.count,
        "sum": s.sum,
        "min": s.min,
        "max": s.max,
        "mean": s.mean,
        "p50": s.p50,
        "p90": s.p90,
        "p99": s.p99,
        "p999": s.p999,
        "overflow": s.overflow,
    }


def snapshot_records(registry: Registry | None = None) -> list[dict[str, Any]]:
    """One dict per metric and label set, taken now (what :func:`write_jsonl` writes)."""
    ts = to_unix_ns(now_ns())
    records: list[dict[str, Any]] = []
    for family in (registry or _DEFAULT_REGISTRY).families():
        kids: Sequence[Counter | Gauge | Histogram] = (
            family.children() if family.label_names else [family]
        )
        for child in kids:
            rec: dict[str, Any] = {
                "ts_unix_ns": ts,
                "name": child.name,
                "labels": dict(zip(child.label_names, child.label_values, strict=True)),
            }
            if isinstance(child, Histogram):
                rec["kind"] = "histogram"
                rec["unit"] = child.unit
                rec.update(_snapshot_fields(child.snapshot()))
            else:
                rec["kind"] = "counter" if isinstance(child, Counter) else "gauge"
                rec["value"] = child.value
            records.append(rec)
    return records


class _SupportsWrite(Protocol):
    def write(self, s: str, /) -> object: ...


def write_jsonl(fp: _SupportsWrite, registry: Registry | None = None) -> int:
    """Writes one JSON object per metric and label set to ``fp``; returns the line count.

    Keys are sorted so that equal states give equal bytes. Histograms carry count, sum,
    min, max, mean, p50, p90, p99, p999 and overflow (``null`` where empty).
    """
    records = snapshot_records(registry)
    for rec in records:
        fp.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
    return len(records)


def install_otel_metrics(
    meter_provider: Any = None,
    registry: Registry | None = None,
    *,
    histogram_summaries: bool = True,
) -> OtelMetricsBridge:
    """Makes an OpenTelemetry MeterProvider export our metrics (needs the ``otel`` extra).

    See :mod:`system0.core.otel_metrics` for the mapping; pass ``histogram_summaries=False``
    when the exporter is wrapped in ``System0MetricExporter`` (true OTel histograms).
    """
    from system0.core.otel_metrics import OtelMetricsBridge

    bridge = OtelMetricsBridge(
        registry or _DEFAULT_REGISTRY, meter_provider, histogram_summaries=histogram_summaries
    )
    with _bridges_lock:
        _bridges.append(bridge)
    return bridge


__all__ = [
    "DEFAULT_MAX_LABEL_SETS",
    "HISTOGRAM_BUCKETS",
    "HISTOGRAM_BYTES",
    "HISTOGRAM_MAX_VALUE",
    "HISTOGRAM_RELATIVE_ERROR",
    "Counter",
    "Gauge",
    "Histogram",
    "HistogramSnapshot",
    "Registry",
    "counter",
    "default_registry",
    "gauge",
    "histogram",
    "install_otel_metrics",
    "now_ns",
    "prometheus_le_bounds",
    "render_prometheus",
    "snapshot_records",
    "timed",
    "timer",
    "write_jsonl",
]
# Spans and energy live in their own modules; telemetry is the one place to import them from.

from system0.core.energy import measure as measure_energy  # noqa: E402
from system0.core.tracing import (  # noqa: E402
    Span,
    current_span,
    drain_spans,
    extract,
    inject,
    set_sampling,
    span,
    traced,
)

__all__ += [
    "Span",
    "current_span",
    "drain_spans",
    "extract",
    "inject",
    "measure_energy",
    "set_sampling",
    "span",
    "traced",
]
