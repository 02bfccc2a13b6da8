"""``system0 demo``: the main job on simulated matches, written to one run folder.

The demo loads an ``AIConfig`` (the defaults, or ``--config FILE``, whose signature is
verified when it has one), forks it with the engine flags given on the command line, and
plays seeded matches side by side: every game state goes through the inference engine
(validation, admission, dynamic batching, deadline, breaker) inside the latency budget, and
the flight recorder keeps every decision the engine made. Afterwards everything lands in one
run folder (see ``system0.run_folder``): the training samples and the recorded decisions
through ``ScalableStorage`` (one version each, tagged with the run id), an audit ledger whose
keyring is sealed by a KeyProvider, the effective config, the weights that ran, the HTML
report and the ``run.json`` manifest. ``system0 replay RUN`` re-runs the decisions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from system0 import _core
from system0.core import energy, tracing
from system0.core.config import AIConfig
from system0.demo_report import DemoFigures, render_html, render_text
from system0.errors import Error

__all__ = ["add_demo_command", "fallback_policy", "load_config", "run_demo"]


def fallback_policy(n_actions: int) -> Any:
    """The engine's fallback in the demo (and in its replay): the scripted player, one-hot."""
    from system0.game.heuristic import heuristic_probabilities

    def fallback(x: Any) -> Any:
        return heuristic_probabilities(x, n_actions)

    return fallback


def load_config(
    path: str | None, trusted: list[str] | None = None
) -> tuple[AIConfig, str | None, Path | None]:
    """The config, the key id that signed it (None: unsigned) and its signature file.

    A file with a ``<file>.sig`` beside it must verify against the trusted keys (``trusted``,
    else ``$SYSTEM0_CONFIG_TRUSTED_KEYS``): a signature that cannot be checked is refused,
    not ignored. Without a signature the file loads as ``system0 config show`` loads it (so
    trusted keys, when configured, still refuse it).
    """
    from system0.core import config as cfg
    from system0.core.config import signing

    if path is None:
        return AIConfig(), None, None
    sig = signing.signature_path(path)
    if sig.exists():
        config, key = cfg.verify_file(path, trusted_keys=trusted or None)
        return config, key, sig
    return cfg.load_from_yaml(path, trusted_keys=trusted or None), None, None


def _overrides(args: argparse.Namespace) -> list[str]:
    pairs = (
        ("inference.max_batch", args.max_batch),
        ("inference.max_wait_ms", args.max_wait),
        ("inference.latency_budget_ms", args.budget),
    )
    return [f"{k}={v}" for k, v in pairs if v is not None]


def _check_flags(args: argparse.Namespace) -> str | None:
    for name, value in (("matches", args.matches), ("ticks", args.ticks)):
        if value < 1:
            return f"--{name} must be >= 1"
    if not args.tick_rate > 0:
        return "--tick-rate must be > 0"
    for name, value in (("budget", args.budget), ("max-wait", args.max_wait)):
        if value is not None and not value > 0:
            return f"--{name} must be > 0"
    if args.max_batch is not None and args.max_batch < 1:
        return "--max-batch must be >= 1"
    if args.out and args.out.endswith(".html"):
        return (
            "--out is the run folder now (the HTML report is RUN/report.html); "
            f"give a folder, not {args.out!r}"
        )
    if args.record == "sampled" and not 0 < args.record_rate <= 1:
        return "--record-rate must be in (0, 1]"
    return None


def run_demo(args: argparse.Namespace) -> int:
    problem = _check_flags(args)
    if problem:
        print(f"system0 demo: {problem}", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except ImportError as exc:
        print(f"system0 demo: {exc}", file=sys.stderr)
    except Error as exc:
        print(f"system0 demo: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    from system0.demo_play import PlaySettings, play_matches
    from system0.demo_run import RunWriter
    from system0.game.contract import state_validator
    from system0.game.policy import load_policy, policy_weights_path
    from system0.game.simulator import CHAMPIONS
    from system0.interfaces.flight_recorder import FlightRecorder
    from system0.interfaces.inference_engine import InferenceEngine

    base, signed_by, sig = load_config(args.config, args.trusted)
    overrides = _overrides(args)
    config = base.fork_for_experiment("demo-cli", overrides) if overrides else base
    inf = config.inference
    print(f"system0 {_core.__version__}: clock source {_core.clock_source()}")
    opts: dict[str, Any] = {"device": args.device} if args.backend == "torch" else {}
    model = load_policy(args.backend, **opts)
    info = model.introspect()
    pinned = config.model.artifact_sha256
    if pinned is not None and pinned != info.content_hash:
        raise Error(
            f"the config pins model.artifact_sha256 {pinned}, but the shipped policy is "
            f"{info.content_hash}; fix the config or ship the pinned weights"
        )
    budget_ms = inf.latency_budget_ms
    print(
        f"config {config.content_hash[:19]}; policy {info.content_hash[:12]} on {info.backend} "
        f"({info.device}), {info.parameter_count} parameters; {args.matches} matches x "
        f"{len(CHAMPIONS)} champions x {args.ticks} ticks at {args.tick_rate:g}/s, "
        f"budget {budget_ms:g} ms"
    )
    buckets = tuple(getattr(model, "buckets", ()))
    max_batch = min(inf.max_batch, buckets[-1]) if buckets else inf.max_batch
    recorder = None
    if args.record != "off":
        recorder = FlightRecorder(args.record, rate=args.record_rate, seed=args.seed)
    n_actions = info.outputs[0].shape[-1] or 8
    engine = InferenceEngine(
        model,
        max_batch=max_batch,
        max_wait=inf.max_wait_ms / 1e3,
        buckets=buckets,
        queue_capacity=inf.queue_capacity,
        fallback=fallback_policy(n_actions),
        validator=state_validator(),
        energy=True,
        name="demo",
        recorder=recorder,
    )
    engine.warmup()
    tracing.drain_spans()
    settings = PlaySettings(
        args.matches, args.ticks, args.tick_rate, args.seed, budget_ms / 1e3, args.corrupt
    )
    writer = RunWriter.create(
        args.out, config, info, policy_weights_path(), signature=sig if not overrides else None
    )
    writer.started(settings, engine, signed_by=signed_by, overrides=overrides)
    log, fd = None, -1
    if args.log:
        from system0.core.logging import get_logger

        fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        log = get_logger("system0.demo", fd=fd)
    try:
        with energy.measure() as meter:
            sink, wall = play_matches(
                engine,
                settings,
                champions=len(CHAMPIONS),
                progress=not args.no_progress,
                log=log,
            )
    finally:
        engine.close()
        if fd >= 0:
            os.close(fd)
    tracing.flush_spans()
    spans = len(tracing.drain_spans())
    result = writer.finish(sink, recorder, wall)
    st = engine.stats
    reasons = "; ".join(f"{k}: {v}" for k, v in meter.reasons.items()) or "no energy counter"
    fig = DemoFigures(
        backend=f"{info.backend} ({info.device})",
        matches=args.matches,
        ticks=args.ticks,
        tick_rate=args.tick_rate,
        budget_ms=budget_ms,
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
        samples=sink.samples,
        audit=result.audit,
        extra=result.rows(),
    )
    print("\nreport")
    print(render_text(fig))
    if not args.no_html:
        page = writer.run / "report.html"
        page.write_text(render_html(fig), encoding="utf-8")
        print(f"HTML report written to {page.resolve()}")
    print(f"run folder {writer.run}; replay it with: system0 replay {writer.run}")
    return 0


def add_demo_command(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job: simulated matches through the engine, into a run folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default=None, help="AIConfig YAML (default: the defaults)")
    p.add_argument(
        "--trusted",
        action="append",
        metavar="PUBLIC_KEY",
        help="trusted key for a signed --config (repeatable; default $SYSTEM0_CONFIG_TRUSTED_KEYS)",
    )
    p.add_argument(
        "--out", default=None, help="run folder (default ./system0-runs/<run id>); must be new"
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
        "--budget",
        type=float,
        default=None,
        help="latency budget per request, ms (default: inference.latency_budget_ms)",
    )
    p.add_argument(
        "--max-batch", type=int, default=None, help="engine max batch (default: the config's)"
    )
    p.add_argument(
        "--max-wait",
        type=float,
        default=None,
        help="engine batching window, ms (default: inference.max_wait_ms)",
    )
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument(
        "--corrupt",
        type=float,
        default=0.0,
        help="fraction of records corrupted before submission, to show the "
        "contract refusing them (default 0)",
    )
    p.add_argument(
        "--record",
        choices=("complete", "sampled", "off"),
        default="complete",
        help="flight recorder: every batch (default), a sampled share, or none",
    )
    p.add_argument(
        "--record-rate",
        type=float,
        default=0.1,
        help="share of batches a sampled recording keeps (default 0.1)",
    )
    p.add_argument("--no-html", action="store_true", help="write no HTML report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--log", default=None, help="file for JSON logs, one per tick per match")
    p.set_defaults(run=run_demo)
