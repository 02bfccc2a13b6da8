"""Alert rules and the per-model signals they judge.

A :class:`ModelWindow` is what one model did over one evaluation window: requests answered,
errors among them, the latency histogram of the window, whether its breaker is open.
:class:`TelemetrySource` reads these from the telemetry registry, where every engine already
records them (``engine_total_ns{engine}``, ``engine_requests{engine,outcome}``,
``system0_breaker_state{breaker}``), as deltas between two reads. Engines of one model are
summed: a replica named ``"{model}#{slot}"`` (as :class:`~system0.serving.balancer.ReplicaSet`
names them) counts for ``model``.

A rule turns a window into a value and says whether it breaches (Prometheus' alerting
rules are the reference):

* ``for_s``: a breach must last this long (the alert is *pending* meanwhile) before the
  alert fires; one bad window is not an incident;
* ``keep_firing_for_s``: once firing, the alert keeps firing this long after the last
  breach, so a signal that dips under the threshold for a moment does not resolve it;
* ``resolve``: a second, lower threshold that a firing alert must go under to stop
  breaching (hysteresis by value; default: the threshold itself);
* ``min_requests``: a window with fewer answers has no value (a p99 of three requests is
  noise); no value is no breach.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from system0 import _core
from system0.core import telemetry

__all__ = [
    "BreakerOpenRule",
    "ErrorRateRule",
    "LatencyRule",
    "ModelWindow",
    "Rule",
    "TelemetrySource",
    "default_rules",
    "model_of_engine",
]


def model_of_engine(engine: str) -> str:
    """The model an engine serves: the name before ``#`` (``"policy#2"`` -> ``"policy"``)."""
    return engine.partition("#")[0]


_EMPTY = _core.HistogramSnapshot()


@dataclass(frozen=True, slots=True)
class ModelWindow:
    """One model over one window: ``requests`` answered or failed, ``errors`` among them
    (the outcomes a :class:`TelemetrySource` counts as errors), the window's request
    ``latency`` (ns), and ``breaker_open`` (any of its engines' breakers open now)."""

    model: str
    requests: int = 0
    errors: int = 0
    latency: telemetry.HistogramSnapshot = field(default_factory=_core.HistogramSnapshot)
    breaker_open: bool = False

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _check(owner: str, name: str, value: float, *, zero: bool = True) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value) and value >= 0
    if not ok or (value == 0 and not zero):
        raise ValueError(f"{owner}.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Rule(abc.ABC):
    """What every rule has (see the module doc); subclasses say how a window gives a value.

    ``models``: the models the rule watches (None: every model the source reports);
    ``severity`` and ``summary`` go into the alert's labels and annotations.
    """

    name: str
    threshold: float
    resolve: float | None = None
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    min_requests: int = 1
    severity: str = "warning"
    models: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"{owner}.name must be an identifier (an alertname): {self.name!r}")
        _check(owner, "threshold", self.threshold)
        if self.resolve is not None:
            _check(owner, "resolve", self.resolve)
            if self.resolve > self.threshold:
                raise ValueError(
                    f"{owner}.resolve ({self.resolve}) must not exceed threshold "
                    f"({self.threshold}): a firing alert resolves below it"
                )
        _check(owner, "for_s", self.for_s)
        _check(owner, "keep_firing_for_s", self.keep_firing_for_s)
        if not (isinstance(self.min_requests, int) and self.min_requests >= 1):
            raise ValueError(f"{owner}.min_requests must be an int >= 1, got {self.min_requests!r}")

    @abc.abstractmethod
    def value(self, window: ModelWindow) -> float | None:
        """The window's value for this rule, or None when the window has too little data."""

    @abc.abstractmethod
    def summary(self, model: str, value: float | None) -> str:
        """One line for people: what is wrong, with the value."""

    def breaches(self, value: float | None, firing: bool) -> bool:
        """Over the threshold; a firing alert stays breaching down to ``resolve``."""
        if value is None:
            return False
        limit = self.resolve if firing and self.resolve is not None else self.threshold
        return value > limit

    def watches(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True, slots=True)
class LatencyRule(Rule):
    """The window's ``quantile`` of request latency in milliseconds over ``threshold``."""

    quantile: float = 0.99

    def __post_init__(self) -> None:
        Rule.__post_init__(self)
        if not 0 < self.quantile <= 1:
            raise ValueError(f"LatencyRule.quantile must be in (0, 1], got {self.quantile!r}")

    def value(self, window: ModelWindow) -> float | None:
        if window.latency.count < self.min_requests:
            return None
        q = window.latency.quantile(self.quantile)
        return None if q is None else q / 1e6

    def summary(self, model: str, value: float | None) -> str:
        shown = "no data" if value is None else f"{value:.2f} ms"
        return f"{model}: p{self.quantile * 100:g} latency {shown} over {self.threshold:g} ms"


@dataclass(frozen=True, slots=True)
class ErrorRateRule(Rule):
    """The share of the window's requests that erred over ``threshold`` (0..1)."""

    def __post_init__(self) -> None:
        Rule.__post_init__(self)
        if self.threshold > 1:
            raise ValueError(f"ErrorRateRule.threshold is a share in [0, 1], got {self.threshold}")

    def value(self, window: ModelWindow) -> float | None:
        if window.requests < self.min_requests:
            return None
        return window.error_rate

    def summary(self, model: str, value: float | None) -> str:
        shown = "no data" if value is None else f"{value:.1%}"
        return f"{model}: error rate {shown} over {self.threshold:.1%}"


@dataclass(frozen=True, slots=True)
class BreakerOpenRule(Rule):
    """A breaker of the model is open (value 1.0, else 0.0); the source of the default
    inhibition of latency alerts. ``threshold`` is 0.5 by construction."""

    threshold: float = 0.5

    def value(self, window: ModelWindow) -> float | None:
        return 1.0 if window.breaker_open else 0.0

    def summary(self, model: str, value: float | None) -> str:
        return f"{model}: the model's circuit breaker is open; answers come from the fallback"


_ERROR_OUTCOMES = ("failed", "fallback")


class TelemetrySource:
    """Per-model windows read from a telemetry registry (see the module doc).

    ``error_outcomes``: the ``engine_requests`` outcomes that count as errors (default the
    model failing: ``failed``, and answered by the ``fallback``); every outcome counts as a
    request except refusals before the queue (``overloaded``, ``invalid``), which never
    reached a model. ``model_of`` maps an engine name to its model.
    """

    def __init__(
        self,
        registry: telemetry.Registry | None = None,
        *,
        error_outcomes: Sequence[str] = _ERROR_OUTCOMES,
        model_of: Callable[[str], str] = model_of_engine,
    ) -> None:
        self.registry = registry or telemetry.default_registry()
        self.error_outcomes = frozenset(error_outcomes)
        self.model_of = model_of
        self._counts: dict[tuple[str, str], int] = {}
        self._latency: dict[str, telemetry.HistogramSnapshot] = {}

    def windows(self) -> dict[str, ModelWindow]:
        """What each model did since the previous call (the first call: since the start)."""
        requests: dict[str, int] = {}
        errors: dict[str, int] = {}
        latency: dict[str, telemetry.HistogramSnapshot] = {}
        breaker_open: dict[str, bool] = {}
        for family in self.registry.families():
            if family.name == "engine_requests" and isinstance(family, telemetry.Counter):
                for c in family.children():
                    labels = dict(zip(c.label_names, c.label_values, strict=True))
                    engine, outcome = labels.get("engine", ""), labels.get("outcome", "")
                    key = (engine, outcome)
                    delta = c.value - self._counts.get(key, 0)
                    self._counts[key] = c.value
                    model = self.model_of(engine)
                    if outcome in ("overloaded", "invalid"):
                        requests.setdefault(model, 0)
                        continue
                    requests[model] = requests.get(model, 0) + delta
                    if outcome in self.error_outcomes:
                        errors[model] = errors.get(model, 0) + delta
            elif family.name == "engine_total_ns" and isinstance(family, telemetry.Histogram):
                for h in family.children():
                    engine = h.label_values[0]
                    snap = h.snapshot()
                    window = snap.delta(self._latency.get(engine, _EMPTY))
                    self._latency[engine] = snap
                    model = self.model_of(engine)
                    latency[model] = latency[model].merge(window) if model in latency else window
            elif family.name == "system0_breaker_state" and isinstance(family, telemetry.Gauge):
                for g in family.children():
                    breaker = g.label_values[0]
                    if not breaker.endswith(".model"):  # an engine's breaker is "{engine}.model"
                        continue
                    model = self.model_of(breaker.removesuffix(".model"))
                    breaker_open[model] = breaker_open.get(model, False) or g.value == 1.0
        models = set(requests) | set(latency) | set(breaker_open)
        return {
            m: ModelWindow(
                m,
                requests.get(m, 0),
                errors.get(m, 0),
                latency.get(m, _EMPTY),
                breaker_open.get(m, False),
            )
            for m in sorted(models)
        }


def default_rules(
    latency_ms: float, error_rate: float, *, for_s: float = 60.0, keep_firing_for_s: float = 120.0
) -> list[Rule]:
    """The usual three: latency, error rate, breaker open (with the same timings)."""
    return [
        LatencyRule("ModelLatencyHigh", latency_ms, latency_ms * 0.8, for_s, keep_firing_for_s),
        ErrorRateRule("ModelErrorRateHigh", error_rate, error_rate * 0.5, for_s, keep_firing_for_s),
        BreakerOpenRule("ModelBreakerOpen", severity="critical"),
    ]
