"""Many threads submit, submit_many, submit_many_bytes and cancel at random while another
closes the engine at a random moment: every request that was accepted gets exactly one
answer (a result or a typed error), its done-callback runs exactly once, and none is left
pending after ``close``."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from concurrent.futures import CancelledError
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from system0.errors import Closed, DeadlineExceeded, Overloaded
from system0.interfaces.inference_engine import InferenceEngine
from system0.interfaces.model_interface import MLPWeights, NumpyModelInterface

WIDTH = 52
STATE = json.dumps(
    {
        "timestamp": "2024-05-01T12:00:00Z",
        "champion": "Ahri",
        "position": {"x": 0.5, "y": 0.5},
        "health": 100.0,
        "mana": 20.0,
        "cooldowns": {"q": 0, "w": 3, "e": 0, "r": 90, "d": 0, "f": 0},
        "inventory": ["boots"],
        "vision_score": 12,
        "gold_advantage": -250,
    }
).encode()


def model() -> NumpyModelInterface:
    rng = np.random.default_rng(5)
    mlp = MLPWeights(
        weights=((rng.standard_normal((4, WIDTH)) * 0.2).astype(np.float32),),
        biases=(np.zeros(4, np.float32),),
        mean=np.zeros(WIDTH, np.float32),
        std=np.ones(WIDTH, np.float32),
        clip=5.0,
    )
    return NumpyModelInterface(mlp, name="concurrency-mlp")


MODEL = model()
REFUSED_AT_ONCE = (Closed, Overloaded)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    threads=st.integers(2, 6),
    ops=st.integers(5, 40),
    max_batch=st.sampled_from([1, 4, 16]),
    workers=st.integers(1, 3),
    capacity=st.sampled_from([8, 64, 1024]),
    close_after=st.floats(0.0, 0.02),
)
def test_every_request_is_answered_exactly_once(
    seed: int,
    threads: int,
    ops: int,
    max_batch: int,
    workers: int,
    capacity: int,
    close_after: float,
) -> None:
    eng = InferenceEngine(
        MODEL,
        max_batch=max_batch,
        max_wait=0.0005,
        queue_capacity=capacity,
        workers=workers,
        name="concurrency",
    )
    lock = threading.Lock()
    futures: list[Any] = []
    calls: Counter[int] = Counter()

    def on_done(f: Any) -> None:
        with lock:
            calls[id(f)] += 1

    def run(k: int) -> None:
        rng = random.Random(seed + k)
        for _ in range(ops):
            budget = rng.choice([0.0005, 0.05, 5.0])
            try:
                what = rng.randrange(4)
                if what == 0:
                    got = [eng.submit(np.full(WIDTH, 0.1, np.float32), budget)]
                elif what == 1:
                    tick = np.zeros((rng.randrange(1, 9), WIDTH), np.float32)
                    got = eng.submit_many(tick, budget)
                elif what == 2:
                    got = eng.submit_many_bytes([STATE] * rng.randrange(1, 9), budget)
                else:
                    got = [eng.submit(np.ones(WIDTH, np.float32), budget)]
                    got[0].cancel()
            except REFUSED_AT_ONCE:
                continue
            for f in got:
                f.add_done_callback(on_done)
            with lock:
                futures.extend(got)

    pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    threading.Event().wait(close_after)
    eng.close(timeout=5)
    for t in pool:
        t.join(10)
    eng.close(timeout=5)  # the submitters may have raced the first close: nothing waits now
    assert all(f.done() for f in futures)
    for f in futures:
        assert calls[id(f)] == 1
        try:
            r = f.result(0)
            assert 0 <= r.action < 4
        except CancelledError:
            assert f.cancelled()
        except (Closed, DeadlineExceeded, Overloaded):
            pass
    st_ = eng.stats
    answered = sum(1 for f in futures if not f.cancelled() and f.exception(0) is None)
    assert st_.completed == answered
