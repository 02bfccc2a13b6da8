"""``system0 demo``: telemetry at work on a synthetic workload.

Worker threads serve synthetic "policy" requests whose cost follows a seeded distribution;
each request is timed into a histogram, counted, traced as a span under its batch's span and
logged as a JSON record carrying its trace context. The report shows what the substrate saw:
throughput, latency quantiles, spans recorded, joules (or why none are readable), and the
Prometheus exposition the same registry serves.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from typing import Any

from system0 import _core
from system0.core import energy, telemetry
from system0.core.logging import get_logger


def _workload(worker: int, requests: int, seed: int, log_fd: int) -> None:
    rng = random.Random(
        seed * 1_000_003 + worker
    )  # explicit seed: the same run twice is the same work
    latency = telemetry.histogram("demo_request_ns", labels=("worker",)).labels(str(worker))
    served = telemetry.counter("demo_requests", labels=("worker",)).labels(str(worker))
    log = get_logger("system0.demo", fd=log_fd)
    with telemetry.span("demo.batch", worker=worker):
        for i in range(requests):
            start = telemetry.now_ns()
            with telemetry.span("demo.request", request=i):
                n = int(rng.lognormvariate(6.0, 0.8))  # a heavy-tailed cost, like real traffic
                sum(range(n))
                log.info("request served", worker=worker, request=i, work=n)
            latency.record_since(start)
            served.inc()


def run_demo(args: argparse.Namespace) -> int:
    workers, per_worker = args.workers, args.requests
    log_path = os.devnull if args.log is None else args.log
    print(f"system0 {_core.__version__}: clock source {_core.clock_source()}")
    print(f"{workers} workers x {per_worker} requests, seed {args.seed}; logs to {log_path}")
    telemetry.drain_spans()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        with energy.measure() as meter:
            t0 = time.perf_counter()
            threads = [
                threading.Thread(target=_workload, args=(w, per_worker, args.seed, fd))
                for w in range(workers)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
    finally:
        os.close(fd)
    _report(workers * per_worker, wall, meter)
    return 0


def _report(total: int, wall: float, meter: Any) -> None:
    family = telemetry.histogram("demo_request_ns", labels=("worker",))
    merged = None
    for child in family.children():
        snap = child.snapshot()
        merged = snap if merged is None else merged.merge(snap)
    spans = telemetry.drain_spans()
    print(f"\nserved {total} requests in {wall:.2f} s: {total / wall:,.0f} requests/s")
    if merged is not None and merged.count:
        q = {k: getattr(merged, k) / 1e3 for k in ("p50", "p90", "p99", "p999", "max")}
        print("latency us: " + "  ".join(f"{k} {v:,.1f}" for k, v in q.items()))
    print(f"spans recorded: {len(spans)} (each request a child of its batch span)")
    if meter.total_joules is not None:
        joules = meter.total_joules
        print(f"energy: {joules:.3f} J ({joules / total * 1e3:.3f} mJ per request)")
    else:
        reasons = "; ".join(f"{k}: {v}" for k, v in meter.reasons.items())
        print(f"energy: not available ({reasons})")
    exposition = [
        line
        for line in telemetry.render_prometheus().splitlines()
        if line.startswith("demo_requests")
    ]
    print("\nPrometheus exposition (excerpt):")
    print("\n".join(exposition[:6]))


def add_demo_command(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the main job on a synthetic workload")
    p.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    p.add_argument("--requests", type=int, default=20_000, help="requests per worker")
    p.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    p.add_argument("--log", default=None, help="file for the JSON logs (default: discarded)")
    p.set_defaults(run=run_demo)
