"""asv: metrics recording from Python, system0 beside prometheus_client, over history."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from system0.core import telemetry

N = 10_000


class HistogramRecord:
    """`N` records into one histogram handle."""

    def setup(self) -> None:
        self.ours = telemetry.histogram("asv_latency_ns", registry=telemetry.Registry())
        self.peer = PromHistogram("asv_latency_seconds", "asv", registry=CollectorRegistry())

    def time_system0_record(self) -> None:
        record = self.ours.record
        for _ in range(N):
            record(1234)

    def time_prometheus_observe(self) -> None:
        observe = self.peer.observe
        for _ in range(N):
            observe(0.000001234)


class CounterInc:
    """`N` increments of one counter handle."""

    def setup(self) -> None:
        self.ours = telemetry.counter("asv_events_total", registry=telemetry.Registry())
        self.peer = PromCounter("asv_events", "asv", registry=CollectorRegistry())

    def time_system0_inc(self) -> None:
        inc = self.ours.inc
        for _ in range(N):
            inc()

    def time_prometheus_inc(self) -> None:
        inc = self.peer.inc
        for _ in range(N):
            inc()


class Snapshot:
    """Snapshot and p99 of a histogram holding a million values."""

    def setup(self) -> None:
        self.h = telemetry.histogram("asv_snap_ns", registry=telemetry.Registry())
        for v in range(0, 1_000_000_000, 1000):
            self.h.record(v)

    def time_snapshot_p99(self) -> None:
        p99 = self.h.snapshot().p99
        assert p99 is not None
