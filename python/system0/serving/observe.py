"""What the server counts about itself: per-model HTTP latency and outcomes.

Latency goes to the telemetry registry (``serving_request_ns{model,status}``, rendered on
``/metrics`` with its buckets) and, for the dashboard, into a short window of recent
requests per model, so its percentiles move as traffic does instead of averaging the whole
run. Guard vetoes and fallbacks are counted from the answers themselves.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from system0.core import telemetry
from system0.serving.service import ServedAnswer

__all__ = ["ModelObserver"]

WINDOW_NS = 5_000_000_000  # the dashboard's percentiles cover the last 5 s
_KEEP = 65_536  # requests kept per model for the window (bounded memory under any load)


class ModelObserver:
    """Counts for one served model; thread-safe, a few hundred ns per request."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._hist = telemetry.histogram(
            "serving_request_ns", ("model", "status"), "HTTP infer latency per status"
        )
        self._by_status: dict[int, Any] = {}
        self._vetoes = telemetry.counter("serving_guard_vetoes", ("model", "rule"))
        self._fallbacks = telemetry.counter("serving_fallbacks", ("model",)).labels(model)
        self._recent: deque[tuple[int, int]] = deque(maxlen=_KEEP)
        self.statuses: dict[int, int] = {}
        self.vetoes: dict[str, int] = {}
        self._lock = threading.Lock()

    def observe(self, status: int, start_ns: int, answers: Sequence[ServedAnswer] = ()) -> None:
        end = telemetry.now_ns()
        h = self._by_status.get(status)
        if h is None:
            h = self._by_status[status] = self._hist.labels(self.model, str(status))
        h.record(end - start_ns if end > start_ns else 0)
        with self._lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self._recent.append((end, end - start_ns))
        fallbacks = 0
        for a in answers:
            if a.guard is not None:
                self._vetoes.labels(self.model, a.guard).inc()
                with self._lock:
                    self.vetoes[a.guard] = self.vetoes.get(a.guard, 0) + 1
            fallbacks += a.fallback
        if fallbacks:
            self._fallbacks.inc(fallbacks)

    def window(self, now_ns: int | None = None) -> dict[str, Any]:
        """Percentiles (ns) and rate (1/s) of the answered requests of the last 5 s."""
        now = telemetry.now_ns() if now_ns is None else now_ns
        with self._lock:
            lat = [d for t, d in self._recent if now - t <= WINDOW_NS]
        if not lat:
            return {"count": 0, "rate": 0.0, "p50": None, "p90": None, "p99": None, "p999": None}
        q = np.percentile(np.asarray(lat, np.float64), [50, 90, 99, 99.9])
        return {
            "count": len(lat),
            "rate": len(lat) / (WINDOW_NS / 1e9),
            "p50": float(q[0]),
            "p90": float(q[1]),
            "p99": float(q[2]),
            "p999": float(q[3]),
        }

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"statuses": dict(self.statuses), "guard_vetoes": dict(self.vetoes)}
