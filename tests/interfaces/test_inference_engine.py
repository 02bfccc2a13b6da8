"""InferenceEngine: batching, deadlines, shedding, breaker and fallback, bad input.

The model here is a real AIModelInterface whose speed the test controls: it can block on an
event (so requests pile up behind it) and advance a fake clock by a chosen cost per batch (so
deadlines and the admission estimate move without sleeping).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Self

import numpy as np
import pytest

from system0.core import tracing
from system0.core.error_handling import CircuitBreaker
from system0.errors import DeadlineExceeded, Overloaded
from system0.interfaces.inference_engine import InferenceEngine, InvalidRequest
from system0.interfaces.model_interface import AIModelInterface, ModelInfo, TensorSpec

F = 4


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000_000
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += int(seconds * 1e9)


class ControlledModel(AIModelInterface):
    """Answers softmax(x); blocks while ``gate`` is clear; each batch costs ``cost`` seconds
    of the fake clock; raises or returns NaN on demand."""

    backend = "test"

    def __init__(self, clock: FakeClock, cost: float = 0.0) -> None:
        super().__init__(name="controlled")
        self.clock, self.cost = clock, cost
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.batches: list[np.ndarray] = []
        self.fail: BaseException | None = None
        self.nan = False
        self._features = F

    def load(self, source: Any) -> Self:
        return self

    def introspect(self) -> ModelInfo:
        spec = TensorSpec("x", (None, F))
        return ModelInfo("controlled", "test", (spec,), (spec,), 0, "float32", "cpu", "")

    def _forward(self, x: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(x.copy())
        self.clock.advance(self.cost)
        if self.fail is not None:
            raise self.fail
        if self.nan:
            return np.full_like(x, np.nan)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def row(i: float) -> np.ndarray:
    return np.array([i, 0.0, -i, 1.0], np.float32)


def _fallback(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    out[:, 3] = 1.0
    return out


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _engine(model: ControlledModel, **kw: Any) -> InferenceEngine:
    opts: dict[str, Any] = {"max_batch": 8, "max_wait": 0.05, "clock": model.clock}
    opts.update(kw)
    return InferenceEngine(model, **opts)


def test_requests_waiting_behind_a_busy_model_are_batched(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model, fallback=_fallback) as eng:
        model.gate.clear()
        first = eng.submit(row(0), budget=10)
        assert model.entered.wait(5)
        futs = [eng.submit(row(i), budget=10) for i in range(1, 12)]
        model.gate.set()
        results = [f.result(5) for f in [first, *futs]]
    sizes = [len(b) for b in model.batches]
    assert sizes[0] == 1 and max(sizes) == 8 and sum(sizes) == 12  # max_batch caps a batch
    for i, r in enumerate(results):
        want = np.exp(row(i) - row(i).max())
        np.testing.assert_allclose(r.outputs, want / want.sum(), rtol=1e-6)
        assert not r.fallback and r.reason is None and r.action == int(np.argmax(row(i)))
    assert eng.stats.batch_sizes.get(8) == 1


def test_batches_are_padded_to_buckets(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model, buckets=(1, 4, 8)) as eng:
        model.gate.clear()
        first = eng.submit(row(0), budget=10)
        assert model.entered.wait(5)
        futs = [eng.submit(row(i), budget=10) for i in range(3)]
        model.gate.set()
        assert [f.result(5).batch_size for f in futs] == [3, 3, 3]
        first.result(5)
    assert [len(b) for b in model.batches] == [1, 4]  # 3 rows ran as a bucket of 4


def test_an_inline_call_is_padded_to_the_smallest_bucket(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model, buckets=(4, 8)) as eng:
        r = eng.infer(row(2), budget=10)
    assert [len(b) for b in model.batches] == [4] and eng.batches[0].padded == 4
    assert r.batch_size == 1 and r.action == int(np.argmax(row(2)))
    assert r.outputs.shape == (F,)


def test_a_request_past_its_deadline_is_never_run(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model) as eng:
        model.gate.clear()
        busy = eng.submit(row(0), budget=10)
        assert model.entered.wait(5)
        late = eng.submit(row(5), budget=0.010)
        clock.advance(0.020)  # the request has waited 20 ms of its 10 ms budget
        model.gate.set()
        busy.result(5)
        with pytest.raises(DeadlineExceeded, match="not run"):
            late.result(5)
    assert all(not np.any(b[:, 0] == 5) for b in model.batches)
    assert eng.stats.deadline_exceeded == 1


def test_warmup_seeds_the_estimate_from_its_fastest_round(clock: FakeClock) -> None:
    # the first call compiles (here: 500 ms); seeded from it, the estimate would exceed any
    # 20 ms budget and refuse every request, so no batch would ever run to correct it
    class ColdStart(ControlledModel):
        def _forward(self, x: np.ndarray) -> np.ndarray:
            self.cost = 0.5 if len(self.batches) < 2 else 0.002  # round 1: sizes 1 and 2
            return super()._forward(x)

    model = ColdStart(clock)
    with _engine(model, max_batch=2, max_wait=0.0) as eng:
        eng.warmup(rounds=3)
        assert eng.expected_wait_ns() == pytest.approx(2e6)
        assert eng.submit(row(1), budget=0.020).result(5).fallback is False


def test_admission_refuses_at_once_when_the_wait_would_exceed_the_budget(clock: FakeClock) -> None:
    model = ControlledModel(clock, cost=0.005)  # each batch costs 5 ms
    with _engine(model, max_batch=2, max_wait=0.0) as eng:
        eng.warmup(rounds=1)
        assert eng.expected_wait_ns() == pytest.approx(5e6)
        model.entered.clear()
        model.gate.clear()
        futs = [eng.submit(row(0), budget=1)]
        assert model.entered.wait(5)
        futs += [eng.submit(row(i), budget=1) for i in range(4)]  # 2 more batches queued
        t0 = time.perf_counter()
        with pytest.raises(Overloaded) as info:
            eng.submit(row(9), budget=0.012)  # would wait ~4 batches x 5 ms
        assert time.perf_counter() - t0 < 0.5  # refused at once, not after waiting
        assert info.value.retry_after >= 0.012 and info.value.depth == 4
        ok = eng.submit(row(9), budget=1)  # a larger budget is admitted
        model.gate.set()
        assert all(f.result(5) for f in [*futs, ok])
    assert eng.stats.rejected_overloaded == 1


def test_a_full_queue_rejects_with_overloaded(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model, max_batch=1, queue_capacity=2) as eng:
        model.gate.clear()
        futs = [eng.submit(row(0), budget=10)]
        assert model.entered.wait(5)
        futs += [eng.submit(row(i), budget=10) for i in range(2)]
        with pytest.raises(Overloaded):
            eng.submit(row(3), budget=10)
        model.gate.set()
        for f in futs:
            f.result(5)


def test_model_errors_and_nan_take_the_flagged_fallback_then_open_the_breaker(
    clock: FakeClock,
) -> None:
    model = ControlledModel(clock)
    breaker = CircuitBreaker(
        "test",
        failure_rate_threshold=0.5,
        minimum_calls=4,
        window_calls=4,
        wait=30.0,
        clock=clock,
    )
    with _engine(model, max_batch=1, fallback=_fallback, breaker=breaker) as eng:
        model.fail = RuntimeError("GPU fell off the bus")
        r = eng.infer(row(1), budget=5)
        assert r.fallback and r.action == 3 and "GPU fell off the bus" in (r.reason or "")
        model.fail = None
        model.nan = True
        r = eng.infer(row(1), budget=5)
        assert r.fallback and "NonFiniteOutput" in (r.reason or "")
        for _ in range(2):
            eng.infer(row(1), budget=5)
        assert breaker.state == "open"
        model.nan = False
        calls = len(model.batches)
        r = eng.submit(row(2), budget=5).result(5)
        assert r.fallback and "CircuitOpen" in (r.reason or "")
        assert len(model.batches) == calls  # an open breaker does not call the model
        clock.advance(60)  # past the open period: a probe goes through and succeeds
        r = eng.infer(row(2), budget=5)
        assert not r.fallback and breaker.state == "closed"
    assert eng.stats.fallbacks == 5


def test_without_a_fallback_the_error_reaches_the_caller_and_the_engine_lives_on(
    clock: FakeClock,
) -> None:
    model = ControlledModel(clock)
    with _engine(model) as eng:
        model.fail = KeyError("boom")
        with pytest.raises(KeyError):
            eng.submit(row(1), budget=5).result(5)
        model.fail = None
        assert not eng.submit(row(1), budget=5).result(5).fallback


def test_bad_requests_are_refused_with_reason_codes_before_the_model(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model) as eng:
        with pytest.raises(InvalidRequest) as info:
            eng.submit(np.zeros(3, np.float32), budget=1)
        assert info.value.reasons == ("shape",)
        with pytest.raises(InvalidRequest) as info:
            eng.submit(np.array([1, np.nan, 0, 0], np.float32), budget=1)
        assert info.value.reasons == ("non_finite",)
        with pytest.raises(InvalidRequest) as info:
            eng.submit(["a", "b"], budget=1)
        assert info.value.reasons == ("not_numeric",)
        for budget in (0, -1, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="budget"):
                eng.submit(row(1), budget=budget)
    assert model.batches == [] and eng.stats.rejected_invalid == 3


@pytest.mark.parametrize(
    "kw",
    [
        {"max_batch": 0},
        {"max_batch": 100_000},
        {"max_wait": -1},
        {"max_wait": float("nan")},
        {"buckets": (0, 8)},
        {"buckets": (1, 2)},
        {"queue_capacity": 0},
        {"workers": 0},
        {"headroom": 0.0},
    ],
)
def test_absurd_settings_raise_value_error(clock: FakeClock, kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _engine(ControlledModel(clock), **kw)


async def test_awaitable_form(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model, max_wait=0.001) as eng:
        results = await asyncio.gather(*(eng.asubmit(row(i), budget=5) for i in range(5)))
    assert [r.action for r in results] == [int(np.argmax(row(i))) for i in range(5)]


def test_request_spans_link_to_their_batch_span(clock: FakeClock) -> None:
    tracing.drain_spans()
    model = ControlledModel(clock)
    with _engine(model) as eng, tracing.span("caller") as caller:
        eng.submit(row(1), budget=5).result(5)
    tracing.flush_spans()
    spans = tracing.drain_spans()
    batch = next(s for s in spans if s.name == "engine.batch")
    req = next(s for s in spans if s.name == "engine.request")
    assert req.attributes["batch.span_id"] == batch.span_id_hex
    assert req.attributes["batch.trace_id"] == batch.trace_id_hex
    assert req.trace_id == caller.trace_id and req.parent_id == caller.span_id


def test_blocking_infer_runs_inline_when_idle(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model) as eng:
        r = eng.infer(row(1), budget=5)
    assert r.batch_size == 1 and eng.stats.inline == 1


def test_an_inline_call_records_one_span_that_is_request_and_batch(clock: FakeClock) -> None:
    tracing.drain_spans()
    with _engine(ControlledModel(clock)) as eng, tracing.span("caller") as caller:
        eng.infer(row(1), budget=5)
    tracing.flush_spans()
    spans = [s for s in tracing.drain_spans() if s.name.startswith("engine.")]
    assert [s.name for s in spans] == ["engine.request"]
    (req,) = spans
    assert req.parent_id == caller.span_id and req.attributes["inline"] is True
    assert "batch.span_id" not in req.attributes  # it is its own batch: no link to follow


def test_a_request_outside_any_trace_gets_no_span_of_its_own(clock: FakeClock) -> None:
    tracing.drain_spans()
    with _engine(ControlledModel(clock)) as eng:
        eng.submit(row(1), budget=5).result(5)
    tracing.flush_spans()
    names = [s.name for s in tracing.drain_spans() if s.name.startswith("engine.")]
    assert names == ["engine.batch"]


def test_submit_many_answers_each_request_as_submit_would(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model) as eng:
        model.gate.clear()
        futs = eng.submit_many(np.stack([row(i) for i in range(6)]), budget=10)
        model.gate.set()
        results = [f.result(5) for f in futs]
        listed = [f.result(5) for f in eng.submit_many([row(7), list(row(8))], budget=10)]
        assert eng.submit_many([], budget=10) == []
    assert [r.action for r in results] == [int(np.argmax(row(i))) for i in range(6)]
    assert [r.action for r in listed] == [int(np.argmax(row(7))), int(np.argmax(row(8)))]
    assert max(r.batch_size for r in results) > 1  # queued in one step, batched together
    assert eng.stats.submitted == eng.stats.completed == 8


def test_submit_many_refuses_all_when_one_request_is_invalid(clock: FakeClock) -> None:
    with _engine(ControlledModel(clock)) as eng:
        bad = [row(1), np.array([1.0, np.nan, 0.0, 0.0], np.float32), row(2)]
        with pytest.raises(InvalidRequest, match="request 1") as info:
            eng.submit_many(bad, budget=10)
        assert info.value.reasons == ("non_finite",)
        with pytest.raises(InvalidRequest, match="request 0"):
            eng.submit_many([[1.0, 2.0]], budget=10)
        with pytest.raises(ValueError, match="budget"):
            eng.submit_many([row(1)], budget=0)
    assert eng.stats.submitted == 0 and eng.stats.rejected_invalid == 2


def test_submit_many_is_admitted_by_the_wait_of_its_last_request(clock: FakeClock) -> None:
    model = ControlledModel(clock, cost=0.005)  # each batch costs 5 ms
    with _engine(model, max_batch=2, max_wait=0.0) as eng:
        eng.warmup(rounds=1)
        with pytest.raises(Overloaded, match="last of 8"):
            eng.submit_many([row(i) for i in range(8)], budget=0.012)  # 4 batches x 5 ms
        assert eng.stats.submitted == 0 and eng.stats.rejected_overloaded == 8
        futs = eng.submit_many([row(i) for i in range(8)], budget=1)
        assert all(f.result(5) for f in futs)


def test_submit_many_fails_what_the_full_queue_cannot_take(clock: FakeClock) -> None:
    model = ControlledModel(clock)
    with _engine(model, max_batch=1, queue_capacity=2) as eng:
        model.gate.clear()
        first = eng.submit(row(0), budget=10)
        assert model.entered.wait(5)
        futs = eng.submit_many([row(i) for i in range(5)], budget=10)
        refused = [f for f in futs if f.done() and isinstance(f.exception(), Overloaded)]
        assert len(refused) == 3 and futs[3] in refused and futs[4] in refused
        model.gate.set()
        assert first.result(5) and all(f.result(5) for f in futs[:2])
    assert eng.stats.rejected_overloaded == 3
