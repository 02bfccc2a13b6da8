"""OpenTelemetry bridge for system0 metrics (needs the ``otel`` extra: opentelemetry-sdk).

:class:`OtelMetricsBridge` registers observable instruments on a MeterProvider whose
callbacks read our metrics when the provider's reader collects, so any OTel reader or
exporter (OTLP, in-memory, console) sees them without a second recording path:

- a counter becomes an ``ObservableCounter`` (cumulative, monotonic);
- a gauge becomes an ``ObservableGauge``;
- a histogram becomes three instruments, as a Prometheus summary would: ``<name>.count`` and
  ``<name>.sum`` (``ObservableCounter``) and ``<name>`` (``ObservableGauge``) with one point
  per ``quantile`` attribute (0.5, 0.9, 0.99, 0.999, 1.0). The Python SDK (1.45) has no
  public way to inject pre-aggregated histogram points (no MetricProducer), and replaying
  bucket counts through a synchronous OTel histogram would cost one call per recorded value.

Label names and values become attributes. Metric names keep their Prometheus spelling, with
``:`` (not allowed by OTel) written as ``_``. Families registered later are picked up by
:meth:`refresh`, which ``system0.core.telemetry`` calls on every registration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Observation

from system0._core import Counter, Gauge, Histogram, Registry

QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


def _otel_name(name: str) -> str:
    return name.replace(":", "_")


def _children(family: Counter | Gauge | Histogram) -> list[Any]:
    return list(family.children()) if family.label_names else [family]


def _attrs(child: Counter | Gauge | Histogram) -> dict[str, str]:
    return dict(zip(child.label_names, child.label_values, strict=True))


class OtelMetricsBridge:
    """Exports one system0 registry through an OpenTelemetry MeterProvider."""

    def __init__(self, registry: Registry, meter_provider: Any = None) -> None:
        provider = meter_provider or otel_metrics.get_meter_provider()
        self.registry = registry
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
        else:
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


__all__ = ["QUANTILES", "OtelMetricsBridge"]
