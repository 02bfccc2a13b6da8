"""The performance suite: latency percentiles and throughput of the candidate in the engine,
against the baseline stored for this machine class.

Requests are GameState JSON bytes through the engine's contract (the production path).
Latency: one blocking ``infer`` at a time, timed by the caller, ``LATENCY_CALLS`` of them in
each of ``ROUNDS`` rounds; throughput: ticks of ``TICK`` states submitted with
``submit_many``, ``IN_FLIGHT`` ticks kept queued for ``THROUGHPUT_S`` seconds a round, answers
per second. Each figure is the best round's (the lowest percentile, the highest throughput):
on a shared machine noise only ever slows a round down, while a slow model is slow in every
round, so the best round is the one that measures the model rather than its neighbours.
Each figure is judged by a :class:`~system0.testing.thresholds.MetricThreshold` against the
baseline of the same machine class (timings from another machine say nothing), the failures
with the figures side by side. A failing measurement is taken once more and each figure keeps its
better value: a neighbour's burst does not fail a healthy model, a slow model fails twice.

A baseline file (``baselines/perf.json`` ships, ``--baseline FILE`` overrides) maps machine
classes to the figures measured there::

    {"format": "system0-perf-baseline", "version": 1,
     "machines": {"<class>": {"metrics": {...}, "model_content_hash": ..., "recorded": ...}}}

A machine class with no baseline is judged against the absolute limits alone, and the report
says so. The limits are wide on purpose: the gate runs on shared CI machines, where a 2x
swing is noise; a model that is really slower is slower by far more.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from system0.core.config import AIConfig
from system0.errors import Overloaded, ValidationError
from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.interfaces.inference_engine import EngineFuture, InferenceEngine
from system0.interfaces.model_interface import AIModelInterface
from system0.testing.documents import read_document
from system0.testing.results import Check, SuiteResult
from system0.testing.states import match_states, state_bytes
from system0.testing.thresholds import MetricThreshold, compare

__all__ = [
    "DEFAULT_LIMITS",
    "PerfBaseline",
    "machine_class",
    "measure",
    "perf_suite",
    "record_baseline",
    "shipped_baseline_path",
]

FORMAT = "system0-perf-baseline"
VERSION = 1
LATENCY_CALLS = 400
ROUNDS = 5
TICK = 64
IN_FLIGHT = 4
THROUGHPUT_S = 0.3

DEFAULT_LIMITS: dict[str, MetricThreshold] = {
    "latency_p50_us": MetricThreshold(False, threshold=5_000.0, max_relative_change=3.0),
    "latency_p90_us": MetricThreshold(False, threshold=10_000.0, max_relative_change=4.0),
    "latency_p99_us": MetricThreshold(False, threshold=25_000.0, max_relative_change=10.0),
    "throughput_rps": MetricThreshold(True, threshold=2_000.0, max_relative_change=0.75),
}
UNITS = {"throughput_rps": " rps"}


def shipped_baseline_path() -> Path:
    return Path(__file__).resolve().parent / "baselines" / "perf.json"


def machine_class() -> str:
    """``<os>-<arch>-<n>cpu-<cpu model>``, a file-name-safe slug: timings compare only
    between machines of one class."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1]
                break
    except OSError:
        pass
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower().replace("(r)", "").replace("(tm)", ""))
    return "-".join(
        p
        for p in (
            platform.system().lower(),
            platform.machine().lower(),
            f"{os.cpu_count()}cpu",
            slug.strip("-"),
        )
        if p
    )


class PerfBaseline:
    """The baseline figures by machine class, read from and written to a baseline file."""

    def __init__(self, machines: dict[str, dict[str, Any]] | None = None) -> None:
        self.machines = machines or {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PerfBaseline:
        where = os.fspath(path)
        doc = read_document(path, "perf baseline", FORMAT, VERSION)
        machines = doc.get("machines")
        if not isinstance(machines, dict) or not all(
            isinstance(m, dict) and isinstance(m.get("metrics"), dict) for m in machines.values()
        ):
            raise ValidationError(f"{where}: 'machines' must map classes to {{'metrics': ...}}")
        return cls(machines)

    def metrics(self, machine: str) -> dict[str, float] | None:
        entry = self.machines.get(machine)
        return None if entry is None else {k: float(v) for k, v in entry["metrics"].items()}

    def save(self, path: str | os.PathLike[str]) -> None:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "machines": dict(sorted(self.machines.items())),
        }
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def _engine(model: AIModelInterface, config: AIConfig) -> InferenceEngine:
    inf = config.inference
    engine = InferenceEngine(
        model,
        max_batch=min(inf.max_batch, 4096),
        max_wait=min(inf.max_wait_ms / 1000.0, 1.0),
        queue_capacity=max(inf.queue_capacity, TICK * IN_FLIGHT),
        validator=state_validator(),
        fallback=heuristic_probabilities,
        name="gate-perf",
    )
    engine.warmup()
    return engine


def measure(
    model: AIModelInterface, config: AIConfig | None = None, seed: int = 15
) -> dict[str, float]:
    """The candidate's figures on this machine: latency percentiles (µs) and throughput."""
    cfg = config or AIConfig()
    budget = cfg.inference.latency_budget_ms / 1000.0
    raw = state_bytes(match_states(512, seed))
    with _engine(model, cfg) as engine:
        for r in raw[:64]:  # warm the caches and the engine's estimate
            engine.infer(r, budget)
        rounds = np.array([_latency_round(engine, raw, budget) for _ in range(ROUNDS)])
        rates = [_throughput(engine, raw, budget) for _ in range(ROUNDS)]
    p50, p90, p99 = rounds.min(axis=0) / 1000.0
    return {
        "latency_p50_us": float(p50),
        "latency_p90_us": float(p90),
        "latency_p99_us": float(p99),
        "throughput_rps": max(answered / seconds for answered, _, seconds in rates),
        "refused": float(sum(refused for _, refused, _ in rates)),
    }


def _latency_round(engine: InferenceEngine, raw: list[bytes], budget: float) -> list[float]:
    """p50, p90 and p99 (ns) of one round of blocking calls."""
    lat = np.empty(LATENCY_CALLS, np.int64)
    clock = time.perf_counter_ns
    for i in range(LATENCY_CALLS):
        req = raw[i % len(raw)]
        start = clock()
        engine.infer(req, budget)
        lat[i] = clock() - start
    return [float(v) for v in np.percentile(lat, [50, 90, 99])]


def _throughput(engine: InferenceEngine, raw: list[bytes], budget: float) -> tuple[int, int, float]:
    ticks = [raw[i : i + TICK] for i in range(0, len(raw) - TICK + 1, TICK)]
    flight: deque[list[EngineFuture]] = deque()
    answered = refused = 0
    start = time.perf_counter()
    end = start + THROUGHPUT_S
    k = 0
    while time.perf_counter() < end:
        if len(flight) >= IN_FLIGHT:
            answered += _settle(flight.popleft())
        try:
            flight.append(engine.submit_many(ticks[k % len(ticks)], budget))
        except Overloaded:
            refused += TICK
            if flight:
                answered += _settle(flight.popleft())
        k += 1
    while flight:
        answered += _settle(flight.popleft())
    return answered, refused, time.perf_counter() - start


def _settle(futures: list[EngineFuture]) -> int:
    ok = 0
    for f in futures:
        try:
            f.result(30.0)
            ok += 1
        except Exception:  # a refusal or a deadline: not an answer, not counted
            pass
    return ok


def perf_suite(
    model: AIModelInterface,
    baseline: PerfBaseline,
    *,
    config: AIConfig | None = None,
    limits: dict[str, MetricThreshold] | None = None,
    machine: str | None = None,
    seed: int = 15,
) -> SuiteResult:
    cls = machine or machine_class()
    base = baseline.metrics(cls)
    lim = limits or DEFAULT_LIMITS

    def judge(figures: dict[str, float]) -> list[Check]:
        return [
            compare(
                name,
                figures[name],
                lim[name],
                None if base is None else base.get(name),
                UNITS.get(name, " us"),
            )
            for name in lim
        ]

    figures = measure(model, config, seed)
    checks = judge(figures)
    attempts = 1
    if not all(c.passed for c in checks):
        # a second measurement absorbs a burst from a neighbour (the convention of .ci/run's
        # overload gate); each figure keeps its better value, so a model that is really slow
        # fails both and the report shows the better of its two tries
        again = measure(model, config, seed)
        figures = {
            k: (max if k == "throughput_rps" else min)(figures[k], again[k]) for k in figures
        }
        checks = judge(figures)
        attempts = 2

    known = ", ".join(sorted(baseline.machines)) or "none"
    checks.append(
        Check(
            "baseline for this machine class",
            True,
            f"{cls}: "
            + (
                "compared with its baseline"
                if base is not None
                else f"no baseline (known: {known}); absolute limits only"
            ),
        )
    )
    return SuiteResult(
        "perf",
        checks,
        {
            "attempts": attempts,
            "machine_class": cls,
            "candidate": figures,
            "baseline": base,
            "has_baseline": base is not None,
        },
    )


def record_baseline(
    model: AIModelInterface,
    path: str | os.PathLike[str],
    *,
    config: AIConfig | None = None,
    machine: str | None = None,
    runs: int = 3,
) -> dict[str, float]:
    """Measure ``model`` ``runs`` times and store the median figures as this machine class's
    baseline in ``path`` (kept: the other classes already there)."""
    samples = [measure(model, config) for _ in range(runs)]
    figures = {k: float(np.median([s[k] for s in samples])) for k in samples[0]}
    p = Path(path)
    base = PerfBaseline.load(p) if p.exists() else PerfBaseline()
    base.machines[machine or machine_class()] = {
        "metrics": figures,
        "model_content_hash": model.introspect().content_hash,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs,
    }
    base.save(p)
    return figures
