"""The inference engine against the plain way: the demo policy called directly, and called per
request from a thread pool (issue 13's gates; the engine's hot path is Rust, rust/engine).

* overhead, batch 1: ``engine.infer(row)`` against ``model.infer(row)``, p50 of each over
  calls timed one by one, alternating (CI gate: engine/direct <= 1.6x, ratio >= 0.625;
  goal <= 1.3x, ratio >= 0.77, and <= 5 us added, reported by benches/inference_overload.py);
* throughput at saturation: ``n`` requests submitted at once to the engine (dynamic batching,
  max batch 64) against the same ``n`` through ``ThreadPoolExecutor(4).map(model.infer, ...)``
  (CI gate >= 4x, goal >= 8x); again with ``submit_many`` per tick of 64 feature rows,
  answered before the next tick is submitted;
* bytes in, answers out: ticks of 64 GameState JSON byte strings through
  ``submit_many_bytes`` (decoded and featurized in Rust) against what a user writes without
  it: ``json.loads`` and ``GameState.model_validate`` per state, a Python loop filling the
  feature row, ``np.stack`` and one direct ``model.infer`` per tick with its argmax (CI gate
  >= 4x, goal >= 10x).

The CI gates run the numpy backend of the shipped policy (the light install's default);
``engine_gates`` builds the feature-row rows for any model (benches/gpu/bench_engine.py passes
the CUDA policy).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from gate_request import peer_row, states
from ratio import Gate

from system0.game.policy import load_policy
from system0.game.simulator import MatchSimulator
from system0.interfaces.inference_engine import InferenceEngine
from system0.interfaces.model_interface import AIModelInterface

BUDGET = 10.0  # seconds: the gates measure speed, not shedding


def _rows(n: int) -> np.ndarray:
    sim = MatchSimulator(seed=11)
    feats = [t.features for t in sim.run(n // len(sim.champions) + 1)]
    return np.concatenate(feats)[:n]


def gates() -> list[Gate]:
    model = load_policy("numpy")
    return [*engine_gates(model, "inference"), bytes_gate(model, "inference")]


def bytes_gate(model: AIModelInterface, label: str) -> Gate:
    """Ticks of 64 GameState JSON strings: ``submit_many_bytes`` against pydantic, a Python
    featurize loop and a direct model call per tick."""
    ticks = [[json.dumps(s).encode() for s in states(64, seed=k)] for k in range(8)]
    eng = InferenceEngine(
        model, max_batch=64, max_wait=0.0005, queue_capacity=8192, name="gate-bytes"
    )

    def ours(n: int) -> None:
        for i in range(0, n, 64):
            [f.result() for f in eng.submit_many_bytes(ticks[(i // 64) % 8], BUDGET)]

    def peer(n: int) -> None:
        for i in range(0, n, 64):
            tick = ticks[(i // 64) % 8]
            rows = np.stack([peer_row(json.loads(b)) for b in tick])  # one pydantic validation
            model.infer(rows).argmax(axis=1)

    return Gate(
        f"{label}: submit_many_bytes ticks of 64 vs pydantic + featurize + direct",
        ours,
        peer,
        "pydantic validate + Python featurize + direct model.infer per tick",
        # measured 10-12x on the 2-core VM (ratio); 4x leaves a neighbour room to be loud
        4.0,
        10.0,
        n=64 * 40,
        rounds=5,
    )


def engine_gates(model: AIModelInterface, label: str) -> list[Gate]:
    """The engine over ``model`` against direct and pooled calls; gate names start with
    ``label``."""
    rows = _rows(4096)
    one = rows[0]
    one_batch = rows[:1]
    overhead_engine = InferenceEngine(model, max_batch=64, max_wait=0.0005, name="gate-overhead")
    tput_engine = InferenceEngine(
        model, max_batch=64, max_wait=0.0005, queue_capacity=8192, name="gate-throughput"
    )
    pool = ThreadPoolExecutor(4)

    def direct(n: int) -> None:
        for _ in range(n):
            model.infer(one_batch)

    def engine_one(n: int) -> None:
        for _ in range(n):
            overhead_engine.infer(one, BUDGET)

    def engine_many(n: int) -> None:
        futs = [tput_engine.submit(rows[i % len(rows)], BUDGET) for i in range(n)]
        [f.result() for f in futs]  # the answers, as pool.map returns them

    def engine_bulk(n: int) -> None:
        for i in range(0, n, 64):  # a tick of 64 requests at a time, answered before the next
            tick = rows[i % len(rows) : i % len(rows) + 64]
            [f.result() for f in tput_engine.submit_many(tick, BUDGET)]

    def pool_many(n: int) -> None:
        list(pool.map(model.infer, (rows[i % len(rows)][None, :] for i in range(n))))

    return [
        Gate(
            f"{label}: engine batch-1 call vs direct, p50",
            engine_one,
            direct,
            "direct model.infer",
            # On p50s: per call, alternating, so both sides see the same moments of the
            # machine. With the Rust hot path measured 0.80-0.83 (1.2x) on the 2-core VM;
            # CI fails above 1.6x (0.625), the goal is 1.3x (0.77).
            0.625,
            0.77,
            n=4000,
            rounds=5,
            per_call=True,
        ),
        Gate(
            f"{label}: throughput, dynamic batching vs pool",
            engine_many,
            pool_many,
            "ThreadPoolExecutor(4) per request",
            # measured 7x with the Rust hot path (3.1x before it)
            4.0,
            8.0,
            n=4000,
            rounds=5,
        ),
        Gate(
            f"{label}: throughput, submit_many ticks vs pool",
            engine_bulk,
            pool_many,
            "ThreadPoolExecutor(4) per request",
            # measured 9x with the Rust hot path (3.9-5x before it)
            4.0,
            8.0,
            n=4096,
            rounds=5,
        ),
    ]
