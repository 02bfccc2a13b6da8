"""``system0 demo``: the main job on simulated matches.

Matches of the seeded simulator run side by side, each on its own thread, streaming one game
state per champion per tick at the tick rate. Every state goes through the inference engine
(validation, admission, dynamic batching across matches, deadline, breaker) with the latency
budget; the answer (or the scripted player's, when the engine refused or answered too late)
is the champion's action in the next tick, and each (state, action) pair is recorded as a
training sample. The run ends with a report (throughput, latency quantiles, budget breaches,
rejections, batch sizes, joules where measurable) and an HTML page with latency plots.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

import numpy as np

from system0 import _core
from system0.core import energy, tracing
from system0.demo_report import DemoFigures, render_html, render_text
from system0.errors import DeadlineExceeded, Overloaded
from system0.interfaces.inference_engine import InvalidRequest

DEFAULT_HTML = "system0-demo-report.html"


class _Sink:
    """What the match threads saw, gathered under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[int] = []
        self.finished: list[float] = []
        self.overloaded = self.deadline = self.fallbacks = self.agree = self.answered = 0
        self.invalid = 0
        self.samples_x: list[np.ndarray] = []
        self.samples_a: list[np.ndarray] = []
        self.samples_fb: list[np.ndarray] = []


def _play(
    match: int, args: argparse.Namespace, engine: Any, sink: _Sink, t0: float, log: Any
) -> None:
    # one trace per match: each request's span is a child of it, each log line carries it
    with tracing.span("demo.match", match=match):
        _play_ticks(match, args, engine, sink, t0, log)


def _play_ticks(
    match: int, args: argparse.Namespace, engine: Any, sink: _Sink, t0: float, log: Any
) -> None:
    from system0.game.heuristic import heuristic_actions
    from system0.game.simulator import MatchSimulator

    sim = MatchSimulator(seed=args.seed * 1_000_003 + match)
    rng = np.random.default_rng(args.seed * 7 + match)
    budget = args.budget / 1e3
    period = 1.0 / args.tick_rate
    next_tick = time.perf_counter()
    for _ in range(args.ticks):
        tick = sim.observe()
        scripted = heuristic_actions(tick.features)
        actions = scripted.copy()
        fallback = np.ones(len(actions), dtype=bool)
        futs: list[Future[Any] | None] = []
        overloaded = invalid = 0
        for state in tick.states:
            if args.corrupt and rng.random() < args.corrupt:
                state = {**state, "health": -1.0}  # a producer bug: refused, not run
            try:
                futs.append(engine.submit(state, budget))
            except Overloaded:
                futs.append(None)
                overloaded += 1
            except InvalidRequest:
                futs.append(None)
                invalid += 1
        lat, fin = [], []
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
            fallback[i] = r.fallback
            fbs += r.fallback
            agree += r.action == scripted[i]
            lat.append(r.total_ns)
            fin.append(time.perf_counter() - t0)
        with sink.lock:
            sink.latencies += lat
            sink.finished += fin
            sink.answered += len(lat)
            sink.overloaded += overloaded
            sink.invalid += invalid
            sink.deadline += deadline
            sink.fallbacks += fbs
            sink.agree += agree
            sink.samples_x.append(tick.features)
            sink.samples_a.append(actions.copy())
            sink.samples_fb.append(fallback)
        if log is not None:
            log.info("tick", match=match, tick=tick.index, actions=actions.tolist())
        sim.step(actions)
        next_tick += period
        pause = next_tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)


def _progress(threads: list[threading.Thread], sink: _Sink, total: int, show: bool) -> None:
    tty = sys.stderr.isatty()
    marks = {25, 50, 75}
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        done = sink.answered + sink.overloaded + sink.deadline + sink.invalid
        pct = 100.0 * done / max(1, total)
        if not show:
            continue
        if tty:
            k = int(pct / 100 * 30)
            sys.stderr.write(f"\r[{'#' * k}{'.' * (30 - k)}] {pct:5.1f}%  {done}/{total} states")
            sys.stderr.flush()
        else:
            for m in sorted(marks):
                if pct >= m:
                    print(f"progress: {m}% ({done}/{total} states)", file=sys.stderr)
                    marks.discard(m)
    if show and tty:
        sys.stderr.write(f"\r[{'#' * 30}] 100.0%  {total}/{total} states\n")


def _audit(args: argparse.Namespace, policy_hash: str, sink: _Sink, wall: float) -> str:
    """Record the run in an encrypted, signed audit ledger where the security spine exists."""
    import importlib.util
    import tempfile

    if importlib.util.find_spec("system0.security.audit") is None:
        return "not written (system0.security.audit is not part of this build)"
    from system0.security.audit import AuditLedger
    from system0.security.encryption import Keyring, SigningKey

    where = pathlib.Path(args.audit or tempfile.mkdtemp(prefix="system0-demo-")) / "audit"
    ledger = AuditLedger.open(
        where, keyring=Keyring.generate(), signing_key=SigningKey.generate(), fsync="never"
    )
    try:
        first = ledger.append_many(
            {
                "type": "match_played",
                "match": m,
                "seed": args.seed * 1_000_003 + m,
                "ticks": args.ticks,
                "policy": policy_hash,
            }
            for m in range(args.matches)
        )
        ledger.log_data_access(
            "system0-demo",
            f"training-samples/{args.samples or 'memory'}",
            "write",
            "allow",
            {"samples": sum(len(a) for a in sink.samples_a), "wall_s": round(wall, 3)},
        )
        ledger.checkpoint()
        key = ledger.public_key
        ok = key is not None and ledger.inclusion_proof(first).verify(key)
        size = ledger.size
    finally:
        ledger.close()
    proof = "verified" if ok else "FAILED"
    return f"{size} entries in {where} (signed checkpoint; inclusion proof {proof})"


def run_demo(args: argparse.Namespace) -> int:
    from system0.game.contract import state_validator
    from system0.game.heuristic import heuristic_probabilities
    from system0.game.policy import load_policy
    from system0.game.simulator import CHAMPIONS
    from system0.interfaces.inference_engine import InferenceEngine

    for name, value, low in (("matches", args.matches, 1), ("ticks", args.ticks, 1)):
        if value < low:
            print(f"system0 demo: --{name} must be >= {low}", file=sys.stderr)
            return 2
    if not (args.tick_rate > 0 and args.budget > 0):
        print("system0 demo: --tick-rate and --budget must be > 0", file=sys.stderr)
        return 2
    print(f"system0 {_core.__version__}: clock source {_core.clock_source()}")
    try:
        opts: dict[str, Any] = {"device": args.device} if args.backend == "torch" else {}
        model = load_policy(args.backend, **opts)
    except ImportError as exc:
        print(f"system0 demo: {exc}", file=sys.stderr)
        return 2
    info = model.introspect()
    print(
        f"policy {info.content_hash[:12]} on {info.backend} ({info.device}), "
        f"{info.parameter_count} parameters; {args.matches} matches x {len(CHAMPIONS)} "
        f"champions x {args.ticks} ticks at {args.tick_rate:g}/s, budget {args.budget:g} ms"
    )
    buckets = getattr(model, "buckets", ())
    max_batch = min(args.max_batch, buckets[-1]) if buckets else args.max_batch
    engine = InferenceEngine(
        model,
        max_batch=max_batch,
        max_wait=args.max_wait / 1e3,
        buckets=buckets,
        fallback=lambda x: heuristic_probabilities(x, info.outputs[0].shape[-1] or 8),
        validator=state_validator(),
        energy=True,
        name="demo",
    )
    engine.warmup()
    tracing.drain_spans()
    log = None
    fd = -1
    if args.log:
        from system0.core.logging import get_logger

        fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        log = get_logger("system0.demo", fd=fd)
    sink = _Sink()
    total = args.matches * len(CHAMPIONS) * args.ticks
    try:
        with energy.measure() as meter:
            t0 = time.perf_counter()
            threads = [
                threading.Thread(
                    target=tracing.wrap(_play),
                    args=(m, args, engine, sink, t0, log),
                    name=f"match-{m}",
                )
                for m in range(args.matches)
            ]
            for t in threads:
                t.start()
            _progress(threads, sink, total, not args.no_progress)
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
    finally:
        engine.close()
        if fd >= 0:
            os.close(fd)
    tracing.flush_spans()
    spans = len(tracing.drain_spans())
    st = engine.stats
    reasons = "; ".join(f"{k}: {v}" for k, v in meter.reasons.items()) or "no energy counter"
    fig = DemoFigures(
        backend=f"{info.backend} ({info.device})",
        matches=args.matches,
        ticks=args.ticks,
        tick_rate=args.tick_rate,
        budget_ms=args.budget,
        wall_s=wall,
        answered=sink.answered,
        fallbacks=sink.fallbacks,
        overloaded=sink.overloaded,
        deadline_exceeded=sink.deadline,
        invalid=sink.invalid,
        agreement=sink.agree / max(1, sink.answered),
        latencies_ns=np.asarray(sink.latencies, dtype=np.int64),
        finished_at_s=np.asarray(sink.finished, dtype=np.float64),
        batch_sizes=dict(st.batch_sizes),
        joules=meter.total_joules,
        joules_reason=reasons,
        spans=spans,
        samples=sum(len(a) for a in sink.samples_a),
        audit=_audit(args, info.content_hash, sink, wall),
    )
    print("\nreport")
    print(render_text(fig))
    if args.samples:
        np.savez_compressed(
            args.samples,
            features=np.concatenate(sink.samples_x),
            actions=np.concatenate(sink.samples_a),
            fallback=np.concatenate(sink.samples_fb),
        )
        print(f"training samples written to {args.samples}")
    if not args.no_html:
        out = pathlib.Path(args.out or DEFAULT_HTML)
        out.write_text(render_html(fig), encoding="utf-8")
        print(f"HTML report written to {out.resolve()}")
    return 0


def add_demo_command(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job: simulated matches through the inference engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--backend",
        choices=("numpy", "torch", "jax"),
        default="numpy",
        help="model backend (default numpy: no framework needed)",
    )
    p.add_argument("--device", default="auto", help="torch device (default auto)")
    p.add_argument("--matches", type=int, default=4, help="matches played at once (default 4)")
    p.add_argument("--ticks", type=int, default=300, help="ticks per match (default 300)")
    p.add_argument(
        "--tick-rate", type=float, default=50.0, help="ticks per second per match (default 50)"
    )
    p.add_argument(
        "--budget", type=float, default=20.0, help="latency budget per request, ms (default 20)"
    )
    p.add_argument("--max-batch", type=int, default=64, help="engine max batch (default 64)")
    p.add_argument(
        "--max-wait", type=float, default=1.0, help="engine batching window, ms (default 1)"
    )
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument(
        "--corrupt",
        type=float,
        default=0.0,
        help="fraction of records corrupted before submission, to show the "
        "contract refusing them (default 0)",
    )
    p.add_argument("--out", default=None, help=f"HTML report path (default ./{DEFAULT_HTML})")
    p.add_argument("--no-html", action="store_true", help="write no HTML report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--samples", default=None, help="write training samples to this .npz")
    p.add_argument(
        "--audit",
        default=None,
        help="directory for the run's audit ledger (default: a new temporary one)",
    )
    p.add_argument("--log", default=None, help="file for JSON logs, one per tick per match")
    p.set_defaults(run=run_demo)
