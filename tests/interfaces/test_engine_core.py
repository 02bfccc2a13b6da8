"""The Rust engine core through InferenceEngine: GameState bytes in, futures with
``concurrent.futures`` semantics, the zero-copy batch matrix, and ``close`` answering all.

The models are real AIModelInterface objects (a seeded MLP over the 52 feature columns, and
the controllable model of test_inference_engine); the requests are real JSON and msgpack
bytes of GameStates.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import CancelledError
from typing import Any

import msgspec
import numpy as np
import pytest

from system0.data.serialization import featurize_requests
from system0.errors import Closed
from system0.interfaces.inference_engine import InferenceEngine, InvalidRequest
from system0.interfaces.model_interface import MLPWeights, NumpyModelInterface

WIDTH = 52


def state(i: int, **over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "timestamp": f"2024-05-01T12:00:{i % 60:02d}Z",
        "champion": "Ahri",
        "position": {"x": (i % 10) / 10, "y": 0.5},
        "health": 100.0 + 50 * i,
        "mana": 20.0 * i,
        "cooldowns": {"q": 0, "w": 3, "e": 0, "r": 90, "d": 0, "f": i % 300},
        "inventory": ["boots"] if i % 2 else [],
        "vision_score": 12,
        "gold_advantage": -250 + 10 * i,
    }
    s.update(over)
    return s


def mlp_model() -> NumpyModelInterface:
    rng = np.random.default_rng(3)
    mlp = MLPWeights(
        weights=(
            (rng.standard_normal((16, WIDTH)) * 0.3).astype(np.float32),
            (rng.standard_normal((5, 16)) * 0.3).astype(np.float32),
        ),
        biases=(np.zeros(16, np.float32), np.zeros(5, np.float32)),
        mean=np.zeros(WIDTH, np.float32),
        std=np.ones(WIDTH, np.float32),
        clip=5.0,
    )
    return NumpyModelInterface(mlp, name="core-test-mlp")


class Gated(NumpyModelInterface):
    """The MLP, blocking while ``gate`` is clear (so that requests pile up behind it)."""

    def __init__(self) -> None:
        super().__init__(mlp_model().mlp, name="gated-mlp")
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.seen: list[np.ndarray] = []

    def _forward(self, x: Any) -> Any:
        self.entered.set()
        self.gate.wait(10)
        self.seen.append(np.asarray(x))
        return super()._forward(x)


def test_submit_bytes_answers_as_the_feature_row_would() -> None:
    model = mlp_model()
    states = [state(i) for i in range(6)]
    rows = featurize_requests(states).matrix
    with InferenceEngine(model, max_batch=8, max_wait=0.001) as eng:
        by_row = [eng.submit(r, 5).result(5) for r in rows]
        by_json = [eng.submit_bytes(json.dumps(s).encode(), 5).result(5) for s in states]
        packed = [msgspec.msgpack.encode(s) for s in states]
        by_tick = [f.result(5) for f in eng.submit_many_bytes(packed, 5)]
    for a, b, c in zip(by_row, by_json, by_tick, strict=True):
        np.testing.assert_array_equal(a.outputs, b.outputs)  # both ran as batches of one
        np.testing.assert_allclose(a.outputs, c.outputs, rtol=1e-5)  # a batch sums in order
        assert a.action == b.action == c.action == int(np.argmax(a.outputs))
    assert max(r.batch_size for r in by_tick) > 1  # the tick was queued in one step


def test_one_bad_item_refuses_the_whole_tick_with_its_index_and_reasons() -> None:
    good = json.dumps(state(1)).encode()
    bad = json.dumps(state(2, health=-1, mana=-5)).encode()
    with InferenceEngine(mlp_model()) as eng:
        with pytest.raises(InvalidRequest, match="request 1") as info:
            eng.submit_many_bytes([good, bad, b"{nope"], 5)
        assert info.value.index == 1
        assert set(info.value.reasons) == {"greater_than_equal:health", "greater_than_equal:mana"}
        assert "(2 of 3 refused)" in str(info.value)
        with pytest.raises(InvalidRequest) as one:
            eng.submit_bytes(b"{nope", 5)
        assert one.value.reasons == ("json_invalid",) and one.value.index is None
        with pytest.raises(ValueError, match="not bytes"):
            eng.submit_many_bytes([good, 7], 5)  # type: ignore[list-item]
        with pytest.raises(ValueError, match="budget"):
            eng.submit_bytes(good, 0)
        assert eng.submit_many_bytes([], 5) == []
        assert eng.stats.submitted == 0 and eng.stats.rejected_invalid == 2


def test_bytes_need_a_model_of_the_feature_width() -> None:
    rng = np.random.default_rng(0)
    mlp = MLPWeights(
        weights=(rng.standard_normal((2, 4)).astype(np.float32),),
        biases=(np.zeros(2, np.float32),),
        mean=np.zeros(4, np.float32),
        std=np.ones(4, np.float32),
        clip=5.0,
    )
    with InferenceEngine(NumpyModelInterface(mlp)) as eng, pytest.raises(ValueError, match="52"):
        eng.submit_bytes(json.dumps(state(0)).encode(), 5)


def test_futures_behave_as_concurrent_futures() -> None:
    model = Gated()
    with InferenceEngine(model, max_batch=1, max_wait=0.0) as eng:
        model.gate.clear()
        first = eng.submit(np.zeros(WIDTH, np.float32), 5)
        assert model.entered.wait(5)
        queued = eng.submit(np.ones(WIDTH, np.float32), 5)
        doomed = eng.submit(np.full(WIDTH, 2.0, np.float32), 5)
        calls: list[Any] = []
        queued.add_done_callback(calls.append)
        assert first.running() and not first.done() and not queued.running()
        with pytest.raises(TimeoutError):
            queued.result(timeout=0.01)
        assert not first.cancel()  # running: too late to cancel
        assert doomed.cancel() and doomed.cancelled() and doomed.done()
        with pytest.raises(CancelledError):
            doomed.result()
        model.gate.set()
        r = queued.result(5)
        assert queued.result(5) is r  # the same answer object every time
        assert queued.exception() is None and calls == [queued]
        late: list[Any] = []
        queued.add_done_callback(late.append)  # already done: called at once
        assert late == [queued]
        first.result(5)
    assert len(model.seen) == 2  # the cancelled request never reached the model
    assert eng.stats.completed == 2


# the failing callback is reported through sys.unraisablehook, as pytest shows
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_done_callback_that_raises_does_not_stop_the_others() -> None:
    with InferenceEngine(mlp_model(), max_wait=0.0) as eng:
        fut = eng.submit(np.zeros(WIDTH, np.float32), 5)
        seen: list[Any] = []

        def bad(f: Any) -> None:
            raise RuntimeError("callback bug")

        fut.add_done_callback(bad)
        fut.add_done_callback(seen.append)
        fut.result(5)
    assert seen == [fut]


async def test_an_awaited_answer_arrives_on_the_loop() -> None:
    with InferenceEngine(mlp_model(), max_wait=0.001) as eng:
        data = json.dumps(state(4)).encode()
        r = await eng.asubmit(np.zeros(WIDTH, np.float32), 5)
        rs = await asyncio.gather(*(eng.asubmit(np.ones(WIDTH, np.float32), 5) for _ in range(4)))
        got = await asyncio.wait_for(eng.submit_bytes(data, 5), 5)  # an engine future awaits
        done = eng.submit(np.zeros(WIDTH, np.float32), 5)
        done.result(5)
        again = await done  # already answered: at once, the same result
    assert r.batch_size >= 1 and len(rs) == 4 and got.action >= 0
    assert again is done.result()


def test_the_model_reads_the_batch_matrix_in_place() -> None:
    model = Gated()
    with InferenceEngine(model, max_batch=4, max_wait=0.0, buckets=(4,)) as eng:
        eng.submit(np.full(WIDTH, 3.0, np.float32), 5).result(5)
    (x,) = model.seen
    assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape == (4, WIDTH)
    assert isinstance(x.base, memoryview) and type(x.base.obj).__name__ == "EngineBatch"
    assert (x[0] == 3.0).all() and (x[1:] == 0.0).all()  # the padding rows are zeros


def test_close_answers_every_pending_request() -> None:
    model = Gated()
    eng = InferenceEngine(model, max_batch=2, max_wait=0.0)
    model.gate.clear()
    futs = [eng.submit(np.zeros(WIDTH, np.float32), 30)]
    assert model.entered.wait(5)
    futs += eng.submit_many(np.zeros((5, WIDTH), np.float32), 30)
    eng.close(timeout=0.2)  # the model hangs: what it holds and what waits get Closed
    assert all(f.done() for f in futs)
    assert all(isinstance(f.exception(), Closed) for f in futs)
    with pytest.raises(Closed):
        eng.submit(np.zeros(WIDTH, np.float32), 5)
    with pytest.raises(Closed):
        eng.submit_many_bytes([json.dumps(state(0)).encode()], 5)
    model.gate.set()  # the hung batch's late answer is refused: each future keeps one
    for t in eng._threads:  # a private name: the test waits for the worker to leave
        t.join(5)
    assert all(isinstance(f.exception(), Closed) for f in futs)


def test_close_lets_the_queued_requests_run_first() -> None:
    model = Gated()
    eng = InferenceEngine(model, max_batch=2, max_wait=0.0)
    model.gate.clear()
    futs = [eng.submit(np.zeros(WIDTH, np.float32), 30) for _ in range(5)]
    threading.Timer(0.05, model.gate.set).start()
    eng.close(timeout=5)
    assert all(f.result(0).fallback is False for f in futs)


def test_a_raising_fallback_fails_its_requests_and_the_engine_lives_on() -> None:
    model = Gated()
    calls = {"n": 0}

    def fallback(x: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        raise RuntimeError("fallback broke too")

    with InferenceEngine(model, max_wait=0.0, fallback=fallback) as eng:
        model.gate.clear()  # the gate times out after 10 s in _forward: fail it sooner
        model.seen.clear()
        eng.model._forward = _raise  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="fallback broke"):
            eng.infer(np.zeros(WIDTH, np.float32), 5)
        fut = eng.submit(np.zeros(WIDTH, np.float32), 5)
        assert isinstance(fut.exception(5), RuntimeError)
        del eng.model._forward  # the model works again
        model.gate.set()
        r = eng.infer(np.zeros(WIDTH, np.float32), 5)
    assert not r.fallback and calls["n"] == 2
    assert eng.stats.inline == 1  # the engine was idle again after the failure


def _raise(x: Any) -> Any:
    raise ValueError("model broke")


def test_a_short_budget_is_not_held_for_company_past_its_deadline() -> None:
    # a 0.5 s batching window and 20 ms budgets: the tail of a tick that does not fill its
    # batch leaves the window early enough to run in time instead of expiring unrun
    items = [json.dumps(state(i)).encode() for i in range(10)]
    with InferenceEngine(mlp_model(), max_batch=8, max_wait=0.5) as eng:
        eng.warmup()
        futs = eng.submit_many_bytes(items, 0.02)
        results = [f.result(timeout=5) for f in futs]
    assert [r.batch_size for r in results] == [8] * 8 + [2] * 2
    assert max(r.total_ns for r in results) < 20_000_000
