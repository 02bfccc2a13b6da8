"""The engine round trip: the candidate served by an ``InferenceEngine`` answers, and the
engine's promises hold around it: late work is refused, a full queue pushes back, and a
failing model is answered by the fallback, flagged.

The candidate runs inside :class:`Harness`, a model that forwards every batch to it and lets
the suite hold a batch in the model (to make the queue back up or a deadline pass, for real,
without timing guesses) or make the next batch fail (an exception, or NaN outputs).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from system0.errors import Closed, DeadlineExceeded, Overloaded
from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.interfaces.inference_engine import InferenceEngine
from system0.interfaces.model_interface import AIModelInterface, ModelInfo
from system0.testing.results import Check, SuiteResult
from system0.testing.states import feature_rows, match_states, state_bytes

__all__ = ["Harness", "engine_suite"]

HOLD_TIMEOUT_S = 10.0


class Harness(AIModelInterface):
    """The candidate, with a switch to hold a batch inside the model and one to fail the next."""

    backend = "harness"

    def __init__(self, inner: AIModelInterface) -> None:
        super().__init__(name=f"harness({inner.name})")
        self.inner = inner
        self._open = threading.Event()
        self._open.set()
        self.entered = threading.Event()
        self.fail_next: str | None = None  # "raise" or "nan"

    def load(self, source: Any) -> Self:
        self.inner.load(source)
        return self

    def introspect(self) -> ModelInfo:
        return self.inner.introspect()

    def hold(self) -> None:
        self.entered.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        self.entered.set()
        if not self._open.wait(HOLD_TIMEOUT_S):
            raise TimeoutError("the engine suite held a batch past its own timeout")
        fail, self.fail_next = self.fail_next, None
        if fail == "raise":
            raise RuntimeError("the engine suite failed this batch on purpose")
        out = np.asarray(self.inner.infer(x))
        if fail == "nan":
            out = np.full_like(out, np.nan)
        return out


def _engine(model: AIModelInterface, **kw: Any) -> InferenceEngine:
    engine = InferenceEngine(
        model,
        validator=state_validator(),
        fallback=heuristic_probabilities,
        name="gate-engine",
        **kw,
    )
    engine.warmup()
    return engine


def _round_trip(model: AIModelInterface, states: list[dict[str, Any]]) -> Check:
    expected = np.asarray(model.infer(feature_rows(states)))
    with _engine(model) as engine:
        results = [f.result(HOLD_TIMEOUT_S) for f in engine.submit_many(state_bytes(states), 5.0)]
    got = np.stack([r.outputs for r in results])
    bad = [
        i
        for i, r in enumerate(results)
        if r.fallback or r.action != int(np.argmax(r.outputs)) or r.total_ns <= 0
    ]
    close = got.shape == expected.shape and bool(np.allclose(got, expected, atol=1e-6))
    sums = np.abs(got.sum(axis=1) - 1.0).max() if got.ndim == 2 else float("inf")
    ok = close and not bad and sums < 1e-3
    return Check(
        "round trip",
        ok,
        f"{len(results)} states as JSON bytes: outputs {'match' if close else 'DIFFER from'} the "
        f"model's own, probabilities sum to 1 within {sums:.1e}, {len(bad)} results inconsistent",
    )


def _deadline(harness: Harness, states: list[bytes]) -> Check:
    with _engine(harness, max_batch=4, max_wait=0.0) as engine:
        harness.hold()
        first = engine.submit(states[0], 5.0)
        if not harness.entered.wait(HOLD_TIMEOUT_S):
            harness.release()
            return Check("deadline", False, "the first request never reached the model")
        late = engine.submit(states[1], 0.05)
        time.sleep(0.1)  # the late request's budget runs out while the model is held
        harness.release()
        first.result(HOLD_TIMEOUT_S)
        try:
            late.result(HOLD_TIMEOUT_S)
        except DeadlineExceeded as exc:
            counted = engine.stats.deadline_exceeded == 1
            return Check("deadline", counted, f"refused unrun: {exc}; counted: {counted}")
        return Check("deadline", False, "a request whose budget ran out in the queue was answered")


def _overload(harness: Harness, states: list[bytes]) -> Check:
    capacity = 4
    with _engine(harness, max_batch=2, max_wait=0.0, queue_capacity=capacity) as engine:
        harness.hold()
        running = engine.submit(states[0], 5.0)
        harness.entered.wait(HOLD_TIMEOUT_S)
        queued = [engine.submit(s, 5.0) for s in states[1 : 1 + capacity]]
        try:
            engine.submit(states[1 + capacity], 5.0)
        except Overloaded as exc:
            refused: Overloaded | None = exc
        else:
            refused = None
        harness.release()
        answered = [f.result(HOLD_TIMEOUT_S) for f in [running, *queued]]
    if refused is None:
        return Check("overload", False, f"a full queue ({capacity} waiting) accepted more")
    ok = refused.retry_after >= 0 and len(answered) == capacity + 1
    return Check(
        "overload",
        ok,
        f"full queue refused at once: {refused} (retry_after {refused.retry_after:.4f} s); "
        f"the {len(answered)} admitted were answered",
    )


def _fallback(harness: Harness, states: list[bytes]) -> Check:
    notes: list[str] = []
    ok = True
    with _engine(harness, max_wait=0.0) as engine:
        for mode, cause in (("raise", "RuntimeError"), ("nan", "NonFiniteOutput")):
            harness.fail_next = mode
            result = engine.infer(states[0], 5.0)
            flagged = result.fallback and cause in (result.reason or "")
            ok &= flagged
            notes.append(f"{mode}: fallback={result.fallback} reason={result.reason!r}")
        result = engine.infer(states[0], 5.0)
        ok &= not result.fallback
        notes.append(f"next call: fallback={result.fallback}")
        engine.close()
        try:
            engine.submit(states[0], 5.0)
        except Closed:
            notes.append("closed engine refuses with Closed")
        else:
            ok = False
            notes.append("a closed engine accepted a request")
    return Check("fallback flagged", ok, "; ".join(notes))


def engine_suite(model: AIModelInterface, seed: int = 15) -> SuiteResult:
    states = match_states(64, seed)
    raw = state_bytes(states)
    harness = Harness(model)
    checks = [
        _round_trip(model, states),
        _deadline(harness, raw),
        _overload(harness, raw),
        _fallback(harness, raw),
    ]
    return SuiteResult("engine", checks, {"states": len(states)})
