"""Gates for metrics recording from Python: system0 handles against prometheus_client.

Both sides run the same loop in the same process on the same value; the peer's histogram
value lands in its first bucket (its cheapest path), so the ratio is not flattered.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from ratio import Gate

from system0.core import telemetry


def gates() -> list[Gate]:
    reg = telemetry.Registry()
    prom = CollectorRegistry()
    hist = telemetry.histogram("bench_latency_ns", registry=reg)
    prom_hist = PromHistogram("bench_latency_seconds", "bench", registry=prom)
    count = telemetry.counter("bench_events_total", registry=reg)
    prom_count = PromCounter("bench_events", "bench", registry=prom)

    def hist_ours(n: int) -> None:
        record = hist.record
        for _ in range(n):
            record(1234)

    def hist_peer(n: int) -> None:
        observe = prom_hist.observe
        for _ in range(n):
            observe(0.000001234)

    def count_ours(n: int) -> None:
        inc = count.inc
        for _ in range(n):
            inc()

    def count_peer(n: int) -> None:
        inc = prom_count.inc
        for _ in range(n):
            inc()

    return [
        Gate(
            name="histogram record through a handle",
            ours=hist_ours,
            peer=hist_peer,
            peer_name="prometheus_client Histogram.observe",
            gate=5.0,
            goal=10.0,
            n=100_000,
        ),
        Gate(
            name="counter increment",
            ours=count_ours,
            peer=count_peer,
            peer_name="prometheus_client Counter.inc",
            gate=3.0,
            goal=5.0,
            n=100_000,
        ),
    ]
