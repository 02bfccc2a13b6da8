"""The serving benchmark (issue 14's Performance table, server rows), one run:

1. capacity: the closed-loop maximum of each server (64 clients, best of 3 rounds);
2. open loop at 50, 80, 95 and 120 % of system0's capacity, the same offered rates for all
   three servers (system0, the plain FastAPI endpoint, the same with a naive batching loop),
   latency from each request's intended send time: p50, p99, p99.9, goodput, refusals;
3. at 2x system0's capacity: the accepted requests' p99 against the budget, and how fast
   the excess is refused (p50 / p99 of the 429/503 answers);
4. server overhead: one request at a time at a low rate, HTTP p50 against the in-process
   engine's p50 on the same state.

Usage: ``python benches/serving/bench_server.py [--seconds 3] [--json out.json]``. Every
server runs in its own uvicorn process with the same settings; the load generator is
``loadgen.py`` (Python, so the absolute rates are the generator's and the 2 cores' as much
as the servers'; the ratios are what counts).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Run, closed_loop, open_loop, post
from servers import running

from system0.serving.pinned import WARMUP_STATE

NAMES = ("system0", "plain", "batched")
SHARES = (0.5, 0.8, 0.95, 1.2)
BUDGET_MS = 50.0  # system0's default budget (the config's latency_budget_ms)
CONNECTIONS = 64  # keep-alive connections of the open-loop generator (as the 64 clients)
OVERLOAD_CONNECTIONS = 512


def _ms(ns: float) -> str:
    return f"{ns / 1e6:8.2f}"


def _row(name: str, label: str, r: Run) -> dict[str, Any]:
    return {
        "server": name,
        "load": label,
        "offered": r.offered,
        "ok": r.ok,
        "goodput_rps": round(r.goodput, 1),
        "refused": r.refused,
        "failed": r.failed,
        "p50_ms": r.pct(50) / 1e6,
        "p99_ms": r.pct(99) / 1e6,
        "p999_ms": r.pct(99.9) / 1e6,
        "refusal_p50_ms": r.pct(50, refusals=True) / 1e6,
        "refusal_p99_ms": r.pct(99, refusals=True) / 1e6,
    }


def _overhead(port: int, n: int = 400) -> tuple[float, float]:
    """HTTP p50 of one request at a time (closed loop, 1 client), and the in-process
    engine's p50 on the same state through the same submit path (ns)."""
    from system0.game.policy import policy_weights_path
    from system0.serving.pinned import PinnedService

    http = closed_loop(port, post("/v1/models/policy/infer", WARMUP_STATE), n, 1)
    svc = PinnedService.from_weights("policy", policy_weights_path(), max_batch=32)
    svc.warm()
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        svc.submit([WARMUP_STATE], 0.05)[0].result()
        times.append(time.perf_counter_ns() - t0)
    svc.close()
    return http.pct(50), float(statistics.median(times))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0, help="per open-loop run")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    raw = post("/v1/models/policy/infer", WARMUP_STATE)
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        servers = {n: stack.enter_context(running(n)) for n in NAMES}
        capacity: dict[str, float] = {}
        for name, srv in servers.items():
            closed_loop(srv.port, raw, 500)
            best = max(
                (closed_loop(srv.port, raw, 3000) for _ in range(3)), key=lambda r: r.goodput
            )
            capacity[name] = best.goodput
            rows.append(_row(name, "closed loop, 64 clients", best))
        ref = capacity["system0"]
        for share in SHARES:
            for name, srv in servers.items():
                r = open_loop(srv.port, raw, share * ref, args.seconds, CONNECTIONS)
                rows.append(_row(name, f"open loop {share:.0%} ({share * ref:.0f}/s)", r))
        srv = servers["system0"]
        # enough connections that the excess reaches the server (a pool of 64 would queue
        # it in the generator, where no server can refuse it)
        over = open_loop(srv.port, raw, 2 * ref, args.seconds, OVERLOAD_CONNECTIONS)
        rows.append(_row("system0", f"open loop 2x ({2 * ref:.0f}/s)", over))
        http_p50, engine_p50 = _overhead(srv.port)
    print(f"machine: {platform.machine()} python {platform.python_version()}, {time.ctime()}")
    print(
        f"{'server':<8} {'load':<28} {'goodput/s':>9} {'refused':>7} {'failed':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'p99.9':>8} {'refuse p99':>10}"
    )
    for r in rows:
        print(
            f"{r['server']:<8} {r['load']:<28} {r['goodput_rps']:>9.0f} {r['refused']:>7} "
            f"{r['failed']:>6} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['p999_ms']:>8.2f} "
            f"{r['refusal_p99_ms']:>10.2f}"
        )
    print(
        f"capacity ratio (closed loop): system0 / plain {ref / capacity['plain']:.2f}x, "
        f"system0 / batched {ref / capacity['batched']:.2f}x"
    )
    print(
        f"at 2x load: accepted p99 {over.pct(99) / 1e6:.2f} ms (budget {BUDGET_MS:g} ms), "
        f"refusals p50 {over.pct(50, True) / 1e6:.2f} ms p99 {over.pct(99, True) / 1e6:.2f} ms"
    )
    print(
        f"server overhead, batch 1, p50: HTTP {http_p50 / 1e3:.0f} us - in-process engine "
        f"{engine_p50 / 1e3:.0f} us = {(http_p50 - engine_p50) / 1e3:.0f} us"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
