"""OpenTelemetry bridge for system0 metrics (needs the ``otel`` extra: opentelemetry-sdk).

:class:`OtelMetricsBridge` registers observable instruments on a MeterProvider whose
callbacks read our metrics when the provider's reader collects, so any OTel reader or
exporter (OTLP, in-memory, console) sees them without a second recording path:

- a counter becomes an ``ObservableCounter`` (cumulative, monotonic);
- a gauge becomes an ``ObservableGauge``;
- a histogram becomes three instruments, as a Prometheus summary would: ``<name>.count`` and
  ``<name>.sum`` (``ObservableCounter``) and ``<name>`` (``ObservableGauge``) with one point
  per ``quantile`` attribute (0.5, 0.9, 0.99, 0.999, 1.0). The Python SDK (1.45) has no
  public way to inject pre-aggregated histogram points into a reader (no MetricProducer),
  and replaying bucket counts through a synchronous OTel histogram would cost one call per
  recorded value.

For true OTel histograms (explicit-bucket ``HistogramDataPoint`` with count, sum, min, max
and the ``prometheus_le_bounds()`` boundaries, cumulative), wrap the exporter instead:
``PeriodicExportingMetricReader(System0MetricExporter(OTLPMetricExporter()))``, and pass
``histogram_summaries=False`` to the bridge so histograms are not sent twice.

Label names and values become attributes. Metric names keep their Prometheus spelling, with
``:`` (not allowed by OTel) written as ``_``. Families registered later are picked up by
:meth:`refresh`, which ``system0.core.telemetry`` calls on every registration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.sdk.metrics.export import MetricExporter
except ImportError as e:  # pragma: no cover - only without the extra
    raise ImportError(
        "system0.core.otel_metrics needs OpenTelemetry: pip install 'system0[otel]'"
    ) from e
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Histogram as OtelHistogram
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from system0._core import (
    Counter,
    Gauge,
    Histogram,
    Registry,
    default_registry,
    now_ns,
    prometheus_le_bounds,
    to_unix_ns,
)

QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


def _otel_name(name: str) -> str:
    return name.replace(":", "_")


def _children(family: Counter | Gauge | Histogram) -> list[Any]:
    return list(family.children()) if family.label_names else [family]


def _attrs(child: Counter | Gauge | Histogram) -> dict[str, str]:
    return dict(zip(child.label_names, child.label_values, strict=True))


class OtelMetricsBridge:
    """Exports one system0 registry through an OpenTelemetry MeterProvider."""

    def __init__(
        self,
        registry: Registry,
        meter_provider: Any = None,
        *,
        histogram_summaries: bool = True,
    ) -> None:
        provider = meter_provider or otel_metrics.get_meter_provider()
        self.registry = registry
        self.histogram_summaries = histogram_summaries
        self._meter = provider.get_meter("system0")
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> int:
        """Adds instruments for families registered since the last call; returns how many."""
        added = 0
        with self._lock:
            for family in self.registry.families():
                if family.name in self._known:
                    continue
                self._known.add(family.name)
                self._instrument(family)
                added += 1
        return added

    def _instrument(self, family: Counter | Gauge | Histogram) -> None:
        name, help_ = _otel_name(family.name), family.help
        if isinstance(family, Counter):
            self._meter.create_observable_counter(
                name, callbacks=[self._values(family)], description=help_
            )
        elif isinstance(family, Gauge):
            self._meter.create_observable_gauge(
                name, callbacks=[self._values(family)], description=help_
            )
        elif self.histogram_summaries:
            unit = family.unit
            self._meter.create_observable_counter(
                f"{name}.count", callbacks=[self._hist(family, "count")], description=help_
            )
            self._meter.create_observable_counter(
                f"{name}.sum",
                callbacks=[self._hist(family, "sum")],
                unit=unit,
                description=help_,
            )
            self._meter.create_observable_gauge(
                name, callbacks=[self._hist(family, "quantile")], unit=unit, description=help_
            )

    @staticmethod
    def _values(
        family: Counter | Gauge,
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(c.value, _attrs(c)) for c in _children(family)]

        return callback

    @staticmethod
    def _hist(family: Histogram, what: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            out: list[Observation] = []
            for child in _children(family):
                snap = child.snapshot()
                attrs = _attrs(child)
                if what == "count":
                    out.append(Observation(snap.count, attrs))
                elif what == "sum":
                    out.append(Observation(snap.sum, attrs))
                elif snap.count:
                    for q in QUANTILES:
                        value = snap.quantile(q)
                        if value is not None:
                            out.append(Observation(value, {**attrs, "quantile": q}))
            return out

        return callback


def histogram_metrics(registry: Registry, start_time_unix_nano: int = 0) -> list[Metric]:
    """Every histogram of ``registry`` as an OTel explicit-bucket histogram (cumulative).

    The boundaries and their counting rule are the Prometheus export's: a value <= a bound
    is always counted at or below it (a value at most 0.1 % above a bound may be too); the
    last bucket counts everything above the top bound. Empty histograms report min ``+inf`` and
    max ``-inf``, as the OTel SDK does.
    """
    bounds = prometheus_le_bounds()
    explicit = [float(b) for b in bounds]
    now = to_unix_ns(now_ns())
    out: list[Metric] = []
    for family in registry.families():
        if not isinstance(family, Histogram):
            continue
        points = []
        for child in _children(family):
            snap = child.snapshot()
            cumulative = [snap.count_le(b) for b in bounds] + [snap.count]
            counts = [c - p for c, p in zip(cumulative, [0, *cumulative[:-1]], strict=True)]
            points.append(
                HistogramDataPoint(
                    attributes=_attrs(child),
                    start_time_unix_nano=start_time_unix_nano,
                    time_unix_nano=now,
                    count=snap.count,
                    sum=snap.sum,
                    bucket_counts=counts,
                    explicit_bounds=explicit,
                    min=float(snap.min) if snap.min is not None else float("inf"),
                    max=float(snap.max) if snap.max is not None else float("-inf"),
                )
            )
        data = OtelHistogram(
            data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
        )
        out.append(Metric(_otel_name(family.name), family.help, family.unit, data))
    return out


class System0MetricExporter(MetricExporter):
    """Wraps an OTel metric exporter: every export also carries system0's histograms as true
    OTel histograms (see :func:`histogram_metrics`), in a ``system0`` instrumentation scope."""

    def __init__(self, inner: MetricExporter, registry: Registry | None = None) -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.inner = inner
        self.registry = registry or default_registry()
        self._start = to_unix_ns(now_ns())

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        extra = histogram_metrics(self.registry, self._start)
        if extra:
            scope = ScopeMetrics(InstrumentationScope("system0"), extra, "")
            resources = list(metrics_data.resource_metrics)
            if resources:
                first = resources[0]
                resources[0] = ResourceMetrics(
                    first.resource, [*first.scope_metrics, scope], first.schema_url
                )
            else:
                resources = [ResourceMetrics(Resource.get_empty(), [scope], "")]
            metrics_data = MetricsData(resource_metrics=resources)
        return self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


__all__ = ["QUANTILES", "OtelMetricsBridge", "System0MetricExporter", "histogram_metrics"]
