"""Side-by-side timing for the benchmark gates.

A gate times system0 and the peer a user would otherwise pick on the same work, in the same
process, interleaved round by round so that a noisy neighbour hurts both alike, and keeps the
best round of each (the least disturbed). Only the ratio is gated; absolute times are context.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Gate:
    """One comparison: `ours` must beat `peer` by at least `gate` (CI) and ideally `goal`."""

    name: str
    ours: Callable[[int], None]  # runs the operation n times
    peer: Callable[[int], None]
    peer_name: str
    gate: float
    goal: float
    n: int = 20_000
    rounds: int = 15
    # per_call: time each call, ours and the peer's alternately, and compare the medians
    # (p50) of the n * rounds calls of each side, instead of the best round's mean: for a
    # latency gate stated on p50s, and steadier where one side is far more sensitive to a
    # noisy neighbour than the other
    per_call: bool = False
    # a further condition the measured runs must meet (e.g. "at equal or better p99"):
    # called after the timing, it returns what failed, or None
    check: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class Result:
    gate: Gate
    ours_ns: float
    peer_ns: float
    problem: str | None = None

    @property
    def ratio(self) -> float:
        return self.peer_ns / self.ours_ns

    @property
    def passed(self) -> bool:
        return self.ratio >= self.gate.gate and self.problem is None


def _round(fn: Callable[[int], None], n: int) -> float:
    t0 = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t0) / n


def _p50s(gate: Gate) -> tuple[float, float]:
    clock, ours, peer = time.perf_counter_ns, gate.ours, gate.peer
    total = gate.n * gate.rounds
    a, b = [0] * total, [0] * total
    for i in range(total):
        t0 = clock()
        ours(1)
        t1 = clock()
        peer(1)
        a[i], b[i] = t1 - t0, clock() - t1
    a.sort()
    b.sort()
    return float(a[total // 2]), float(b[total // 2])


def _best_rounds(gate: Gate) -> tuple[float, float]:
    best_ours = best_peer = float("inf")
    for _ in range(gate.rounds):
        best_ours = min(best_ours, _round(gate.ours, gate.n))
        best_peer = min(best_peer, _round(gate.peer, gate.n))
    return best_ours, best_peer


def measure(gate: Gate) -> Result:
    gate.ours(max(1, gate.n // 10))  # warm caches, allocators and lazy initialisation
    gate.peer(max(1, gate.n // 10))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        ours, peer = _p50s(gate) if gate.per_call else _best_rounds(gate)
        return Result(gate, ours, peer, gate.check() if gate.check is not None else None)
    finally:
        if gc_was_enabled:
            gc.enable()


def report(results: list[Result]) -> str:
    lines = [
        f"{'operation':<52} {'system0':>11} {'peer':>11} {'ratio':>7} {'gate':>6} {'goal':>6}",
    ]
    for r in results:
        mark = "ok" if r.passed else "FAIL"
        lines.append(
            f"{r.gate.name:<52} {r.ours_ns:>8.1f} ns {r.peer_ns:>8.1f} ns {r.ratio:>6.1f}x "
            f"{r.gate.gate:>5.1f}x {r.gate.goal:>5.1f}x  {mark}  (peer: {r.gate.peer_name})"
            + (f"  {r.problem}" if r.problem else "")
        )
    return "\n".join(lines)
