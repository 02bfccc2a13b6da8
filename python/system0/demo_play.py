"""The matches of ``system0 demo``: simulated players streaming game states into the engine.

Matches of the seeded simulator run side by side, each on its own thread, streaming one game
state per champion per tick at the tick rate (``math.inf``: as fast as the engine answers,
what the benchmarks use). Every state goes through the inference engine with the latency
budget; the answer (or the scripted player's, when the engine refused or answered too late)
is the champion's action in the next tick. The :class:`Sink` keeps what the threads saw: the
figures of the report, each tick's records and actions (the training samples), and, for each
answered request, which match, tick and champion its decision (batch id, row) belongs to.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.core import tracing
from system0.errors import DeadlineExceeded, Overloaded
from system0.interfaces.inference_engine import InvalidRequest

__all__ = ["PlaySettings", "Sink", "match_seed", "play_matches"]


@dataclass(frozen=True)
class PlaySettings:
    matches: int
    ticks: int
    tick_rate: float  # ticks per second per match; math.inf: no pause between ticks
    seed: int
    budget_s: float
    corrupt: float = 0.0


def match_seed(seed: int, match: int) -> int:
    return seed * 1_000_003 + match


@dataclass
class Sink:
    """What the match threads saw, gathered under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[int] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    overloaded: int = 0
    deadline: int = 0
    fallbacks: int = 0
    agree: int = 0
    answered: int = 0
    invalid: int = 0
    # per match: each tick's records and the actions taken on it
    states: dict[int, list[tuple[dict[str, Any], ...]]] = field(default_factory=dict)
    actions: dict[int, list[npt.NDArray[np.int64]]] = field(default_factory=dict)
    # (batch id, row) -> (match, tick, champion) of each answered request
    context: dict[tuple[int, int], tuple[int, int, str]] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return sum(len(a) for acts in self.actions.values() for a in acts)


def _play(match: int, s: PlaySettings, engine: Any, sink: Sink, t0: float, log: Any) -> None:
    # one trace per match: each request's span is a child of it, each log line carries it
    with tracing.span("demo.match", match=match):
        _play_ticks(match, s, engine, sink, t0, log)


def _play_ticks(match: int, s: PlaySettings, engine: Any, sink: Sink, t0: float, log: Any) -> None:
    from system0.game.heuristic import heuristic_actions
    from system0.game.simulator import MatchSimulator

    sim = MatchSimulator(seed=match_seed(s.seed, match))
    rng = np.random.default_rng(s.seed * 7 + match)
    budget = s.budget_s
    period = 0.0 if math.isinf(s.tick_rate) else 1.0 / s.tick_rate
    next_tick = time.perf_counter()
    states: list[tuple[dict[str, Any], ...]] = []
    taken: list[npt.NDArray[np.int64]] = []
    for _ in range(s.ticks):
        tick = sim.observe()
        scripted = heuristic_actions(tick.features)
        actions = scripted.copy()
        futs: list[Future[Any] | None] = []
        overloaded = invalid = 0
        for state in tick.states:
            if s.corrupt and rng.random() < s.corrupt:
                state = {**state, "health": -1.0}  # a producer bug: refused, not run
            try:
                futs.append(engine.submit(state, budget))
            except Overloaded:
                futs.append(None)
                overloaded += 1
            except InvalidRequest:
                futs.append(None)
                invalid += 1
        lat, fin, where = [], [], []
        deadline = agree = fbs = 0
        for i, f in enumerate(futs):
            if f is None:
                continue
            try:
                r = f.result(timeout=budget * 20 + 1.0)
            except DeadlineExceeded:
                deadline += 1
                continue
            actions[i] = r.action
            fbs += r.fallback
            agree += r.action == scripted[i]
            lat.append(r.total_ns)
            fin.append(time.perf_counter() - t0)
            where.append(((r.batch_id, r.row), (match, tick.index, tick.states[i]["champion"])))
        states.append(tick.states)
        taken.append(actions.copy())
        with sink.lock:
            sink.latencies += lat
            sink.finished += fin
            sink.answered += len(lat)
            sink.overloaded += overloaded
            sink.invalid += invalid
            sink.deadline += deadline
            sink.fallbacks += fbs
            sink.agree += agree
            sink.context.update(where)
        if log is not None:
            log.info("tick", match=match, tick=tick.index, actions=actions.tolist())
        sim.step(actions)
        if period:
            next_tick += period
            pause = next_tick - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    with sink.lock:
        sink.states[match] = states
        sink.actions[match] = taken


def _progress(threads: list[threading.Thread], sink: Sink, total: int) -> None:
    tty = sys.stderr.isatty()
    marks = {25, 50, 75}
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        done = sink.answered + sink.overloaded + sink.deadline + sink.invalid
        pct = 100.0 * done / max(1, total)
        if tty:
            k = int(pct / 100 * 30)
            sys.stderr.write(f"\r[{'#' * k}{'.' * (30 - k)}] {pct:5.1f}%  {done}/{total} states")
            sys.stderr.flush()
        else:
            for m in sorted(marks):
                if pct >= m:
                    print(f"progress: {m}% ({done}/{total} states)", file=sys.stderr)
                    marks.discard(m)
    if tty:
        sys.stderr.write(f"\r[{'#' * 30}] 100.0%  {total}/{total} states\n")


def play_matches(
    engine: Any, settings: PlaySettings, *, champions: int, progress: bool = False, log: Any = None
) -> tuple[Sink, float]:
    """Play ``settings.matches`` matches at once against ``engine``; the sink and the wall
    time of the play (seconds)."""
    sink = Sink()
    total = settings.matches * champions * settings.ticks
    t0 = time.perf_counter()
    threads = [
        threading.Thread(
            target=tracing.wrap(_play),
            args=(m, settings, engine, sink, t0, log),
            name=f"match-{m}",
        )
        for m in range(settings.matches)
    ]
    for t in threads:
        t.start()
    if progress:
        _progress(threads, sink, total)
    for t in threads:
        t.join()
    return sink, time.perf_counter() - t0
