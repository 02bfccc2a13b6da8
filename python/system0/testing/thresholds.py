"""Pass/fail on a metric against an absolute limit and a baseline, as MLflow's
``MetricThreshold`` does: a limit (``threshold``), an absolute and a relative change, and a
direction (``greater_is_better``).

One difference, on purpose: MLflow's ``min_*_change`` asks a candidate to *improve* on its
baseline by at least that much; a release gate lets a candidate be *worse* by at most
``max_absolute_change`` / ``max_relative_change`` (a new model needs not be faster, only not
much slower). Every criterion given must hold, as in MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from system0.testing.results import Check

__all__ = ["MetricThreshold", "compare"]


@dataclass(frozen=True, slots=True)
class MetricThreshold:
    """Limits for one metric; None leaves a criterion out."""

    greater_is_better: bool
    threshold: float | None = None
    max_absolute_change: float | None = None
    max_relative_change: float | None = None

    def __post_init__(self) -> None:
        for name in ("threshold", "max_absolute_change", "max_relative_change"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"MetricThreshold.{name} must be finite, got {v}")
        for name in ("max_absolute_change", "max_relative_change"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"MetricThreshold.{name} is an allowed regression, >= 0; got {v}")


def compare(
    metric: str, value: float, limits: MetricThreshold, baseline: float | None, unit: str = ""
) -> Check:
    """The check of ``value`` against ``limits`` and ``baseline`` (None: no baseline on this
    machine class, the absolute limit alone), with the figures side by side."""
    sign = 1.0 if limits.greater_is_better else -1.0
    better = "higher" if limits.greater_is_better else "lower"
    failures: list[str] = []
    parts = [f"{metric} {value:,.1f}{unit} ({better} is better)"]
    if not math.isfinite(value):
        failures.append("not measured")
    if limits.threshold is not None:
        ok = value >= limits.threshold if limits.greater_is_better else value <= limits.threshold
        rel = ">=" if limits.greater_is_better else "<="
        parts.append(f"limit {rel} {limits.threshold:,.1f}{unit}")
        if not ok:
            failures.append("beyond the limit")
    if baseline is not None:
        worse = sign * (baseline - value)  # > 0: the candidate is worse than its baseline
        relative = worse / abs(baseline) if baseline else math.inf if worse > 0 else 0.0
        parts.append(
            f"baseline {baseline:,.1f}{unit}, change {-sign * worse:+,.1f}{unit} "
            f"({-sign * relative:+.0%})"
        )
        if limits.max_absolute_change is not None and worse > limits.max_absolute_change:
            failures.append(f"worse by more than {limits.max_absolute_change:,.1f}{unit}")
        if limits.max_relative_change is not None and relative > limits.max_relative_change:
            failures.append(f"worse by more than {limits.max_relative_change:.0%}")
    detail = "; ".join(parts)
    if failures:
        detail += " -> " + ", ".join(failures)
    return Check(metric, not failures, detail)
