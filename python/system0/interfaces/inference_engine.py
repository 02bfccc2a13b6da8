"""``InferenceEngine``: answer inside a latency budget, or say at once why not.

``submit(request, budget)`` validates the request against its contract, decides admission,
and returns a ``concurrent.futures.Future`` of an :class:`InferenceResult` (``asubmit`` is the
awaitable form, ``infer`` the blocking one). On the way:

* **contract**: a request that breaks it raises :class:`InvalidRequest` (a ``ValidationError``
  with reason codes) before it reaches a queue or the model;
* **admission**: the engine keeps a moving estimate of how long a batch takes; when the work
  already queued means this request would wait longer than its budget, it is refused at once
  with ``Overloaded`` (``retry_after`` = the expected wait), never queued to fail later;
* **bounded queue** (``system0.core.error_handling.BoundedQueue``, reject policy): a full queue
  is ``Overloaded`` too;
* **dynamic batcher**: a worker takes the first waiting request, then gathers more for at most
  ``max_wait`` seconds or until ``max_batch``; with ``buckets`` the batch is padded up to the
  next bucket size (static shapes for jax and CUDA graphs);
* **deadlines**: a request whose deadline passed while it waited is never run; its future
  raises ``DeadlineExceeded``;
* **breaker and fallback**: the model runs through a ``CircuitBreaker``; an exception or a
  non-finite output counts as a failure, and the batch is answered by the deterministic
  ``fallback`` policy with ``fallback=True`` and the reason on every result (no fallback:
  the futures raise the error). The engine thread never dies of a model error;
* **telemetry**: histograms of queue wait, batch size, model time per batch, total time per
  request; counters per outcome; joules per batch where the machine can measure them; a span
  per batch and a span per request that carries its batch's trace and span id (the request
  span is the child of the span that was current at ``submit``; a request submitted with no
  current span has no trace to join and gets none, its timing being in the histograms and
  its batch's span). An inline call records one span, both request and batch.

When the engine is idle (nothing queued, no batch running), a blocking ``infer`` runs its
request on the caller's thread instead of handing it to the worker: the same checks,
breaker and telemetry, without a thread switch (what makes a batch-1 call cheap).

The flight recorder (``recorder=``) is called once per batch that ran (and once per inline
call) after its answers are settled, with a :class:`DecisionBatch`: the matrix exactly as the
model saw it (padding included), how many of its rows are real, the outputs, the actions and
the fallback flag, so that every decision can be replayed bit for bit.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from system0 import _core
from system0.core import energy as _energy
from system0.core import telemetry, tracing
from system0.core.error_handling import BoundedQueue, CircuitBreaker, Policy
from system0.errors import Closed, DeadlineExceeded, Error, Overloaded, ValidationError
from system0.interfaces.model_interface import AIModelInterface

__all__ = [
    "BatchRecord",
    "BatchValidator",
    "DecisionBatch",
    "InferenceEngine",
    "InferenceResult",
    "InvalidRequest",
    "NonFiniteOutput",
]

Clock = Callable[[], int]
Fallback = Callable[[npt.NDArray[np.float32]], npt.NDArray[Any]]
Validator = Callable[[Any], npt.NDArray[np.float32]]
Recorder = Callable[["DecisionBatch"], None]
_log = logging.getLogger("system0.interfaces.inference_engine")


class InvalidRequest(ValidationError):
    """A request broke its contract; ``reasons`` holds machine-readable reason codes
    (``"{code}:{path}"`` for a GameState, as the codec writes them), ``index`` the position
    of the refused request among those submitted together (None for a single one)."""

    def __init__(
        self, message: str, reasons: Sequence[str] = (), *, index: int | None = None
    ) -> None:
        super().__init__(message)
        self.reasons = tuple(reasons)
        self.index = index


@runtime_checkable
class BatchValidator(Protocol):
    """A validator that also checks a whole tick at once: ``validate_many(requests)`` returns
    the ``(len(requests), features)`` matrix, or raises :class:`InvalidRequest` naming the
    first refused request (``index``). ``submit_many`` then makes one call per tick."""

    def __call__(self, request: Any) -> npt.NDArray[np.float32]: ...

    def validate_many(self, requests: Sequence[Any]) -> npt.NDArray[np.float32]: ...


class NonFiniteOutput(Error, ValueError):
    """The model returned NaN or infinity: counted as a model failure by the breaker."""


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4x, on every request
class InferenceResult:
    """One answer. ``fallback`` marks answers of the fallback policy, with the ``reason``."""

    outputs: npt.NDArray[Any]
    action: int
    fallback: bool
    reason: str | None
    batch_size: int
    batch_id: int
    queue_wait_ns: int
    model_ns: int
    total_ns: int
    row: int = 0  # this request's row in its batch: with batch_id, the decision's address


@dataclass(frozen=True, slots=True)
class DecisionBatch:
    """What the flight recorder gets for one batch: enough to run it again as it ran.

    ``features`` is the matrix passed to the model, padding rows included (``padded`` rows);
    the first ``rows`` are the real requests, in the order of their results' ``row``.
    ``outputs`` (``rows`` rows) and ``actions`` are what the requests were answered;
    ``fallback`` says the fallback policy answered them (``reason`` why). The arrays belong
    to the engine and the model: a recorder that keeps them past the call copies them.
    """

    batch_id: int
    features: npt.NDArray[np.float32]
    rows: int
    outputs: npt.NDArray[Any]
    actions: npt.NDArray[np.int64]
    fallback: bool
    reason: str | None
    inline: bool
    model_ns: int

    @property
    def padded(self) -> int:
        return int(self.features.shape[0])


@dataclass(slots=True)
class BatchRecord:
    """What the engine saw of one batch (kept for reports; the last ``history`` batches)."""

    batch_id: int
    size: int
    padded: int
    model_ns: int
    fallback: bool
    joules: float | None


_PENDING = object()
_NUMBER = (int, float)  # built once: `int | float` would build a union on every call


@dataclass(slots=True)
class _Request:
    x: npt.NDArray[np.float32]
    future: Future[InferenceResult] | None  # None: an inline call, answered by return
    submit_ns: int
    deadline_ns: int
    parent: Any
    enqueued_ns: int = 0  # process clock (real time), for the batching window


@dataclass(slots=True)
class EngineStats:
    submitted: int = 0
    completed: int = 0
    fallbacks: int = 0
    rejected_overloaded: int = 0
    rejected_invalid: int = 0
    deadline_exceeded: int = 0
    batches: int = 0
    inline: int = 0
    recorder_errors: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


def _default_validator(features: int) -> Validator:
    def check(request: Any) -> npt.NDArray[np.float32]:
        try:
            x = np.ascontiguousarray(request, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"request is not numeric: {exc}", ("not_numeric",)) from exc
        if x.shape != (features,):
            raise InvalidRequest(
                f"request must be {features} feature values, got shape {x.shape}", ("shape",)
            )
        if not math.isfinite(_core.perf_absmax(x)):  # NaN or inf anywhere, in one pass
            bad = [int(i) for i in np.flatnonzero(~np.isfinite(x))]
            raise InvalidRequest(f"request holds NaN or infinity at {bad}", ("non_finite",))
        return x

    return check


class InferenceEngine:
    """Dynamic batching, admission control, deadlines and a breaker around one model.

    Parameters: ``max_batch`` (1..4096), ``max_wait`` (seconds a first request may wait for
    company, 0..1), ``buckets`` (batch sizes to pad to; empty: no padding), ``queue_capacity``,
    ``fallback`` (features -> outputs, deterministic), ``validator`` (request -> feature row,
    raising :class:`InvalidRequest`), ``breaker`` (a ``CircuitBreaker``; default opens at 50 %
    failures over 10 calls for 5 s), ``clock`` (ns; tests inject a fake one), ``energy``
    (measure joules per batch), ``workers`` (batching threads), ``headroom`` (the share of a
    budget the expected wait may fill, default 0.9), ``recorder`` (the flight recorder: a
    callable taking each :class:`DecisionBatch`; it runs on the thread that ran the batch,
    before the batch's futures are set, so it must be quick; an exception in it is counted
    in ``stats.recorder_errors`` and never reaches a request). Call ``close()`` when done
    (or use it as a context manager).
    """

    def __init__(
        self,
        model: AIModelInterface,
        *,
        max_batch: int = 32,
        max_wait: float = 0.002,
        buckets: Sequence[int] = (),
        queue_capacity: int = 1024,
        fallback: Fallback | None = None,
        validator: Validator | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock = _core.now_ns,
        energy: bool = False,
        workers: int = 1,
        name: str = "engine",
        history: int = 100_000,
        headroom: float = 0.9,
        recorder: Recorder | None = None,
    ) -> None:
        if not 1 <= max_batch <= 4096:
            raise ValueError(f"max_batch must be in [1, 4096], got {max_batch}")
        if not (math.isfinite(max_wait) and 0 <= max_wait <= 1.0):
            raise ValueError(f"max_wait must be in [0, 1] seconds, got {max_wait}")
        bks = tuple(sorted(set(buckets)))
        if bks and (bks[0] < 1 or bks[-1] < max_batch):
            raise ValueError(f"buckets must be >= 1 and reach max_batch {max_batch}, got {bks}")
        if not 1 <= queue_capacity <= 1_000_000:
            raise ValueError(f"queue_capacity must be in [1, 1e6], got {queue_capacity}")
        if not 1 <= workers <= 64:
            raise ValueError(f"workers must be in [1, 64], got {workers}")
        if not 0.1 <= headroom <= 1.0:
            raise ValueError(f"headroom must be in [0.1, 1], got {headroom}")
        # admit only when the expected wait fits in this share of the budget: the estimate
        # is a mean, and the rest of the budget absorbs the jitter around it
        self.headroom = headroom
        self.model = model
        self.name = name
        self.max_batch, self.max_wait_ns, self.buckets = max_batch, int(max_wait * 1e9), bks
        self.fallback = fallback
        self.validate = validator or _default_validator(model.num_features)
        # a custom validator may return any array-like: the model then checks it again
        self._default_validation = validator is None
        self._infer = model.infer if validator is not None else model.infer_checked
        self.clock = clock
        self.energy = energy
        self.recorder = recorder
        if energy:  # the first reading of a slow counter (NVML) waits: not in a request
            _energy.read_counters(energy=True, cpu=False)
        self.breaker = breaker or CircuitBreaker(
            f"{name}.model",
            failure_rate_threshold=0.5,
            minimum_calls=10,
            window_calls=20,
            wait=5.0,
            # the breaker reads the Rust clock itself unless a test injects another one: a
            # Python callable there costs two calls per model call
            clock=None if clock is _core.now_ns else clock,
        )
        self.queue = BoundedQueue(queue_capacity, Policy.REJECT, name=f"{name}.queue")
        self.stats = EngineStats()
        self.batches: list[BatchRecord] = []
        self._history = history
        self._lock = threading.Lock()  # stats and estimates
        self._run_lock = threading.Lock()  # held while a batch runs: one model call at a time
        self._busy = 0
        self._batch_ids = itertools.count(1)
        self._est_batch_ns = 0.0  # moving average of one batch's model time
        self._closed = False
        lab = (name,)
        self._h_wait = telemetry.histogram("engine_queue_wait_ns", ("engine",)).labels(*lab)
        self._h_model = telemetry.histogram("engine_model_ns", ("engine",)).labels(*lab)
        self._h_total = telemetry.histogram("engine_total_ns", ("engine",)).labels(*lab)
        self._h_size = telemetry.histogram("engine_batch_size", ("engine",), unit="rows").labels(
            *lab
        )
        outcomes = telemetry.counter("engine_requests", ("engine", "outcome"))
        self._c = {
            o: outcomes.labels(name, o)
            for o in (
                "ok",
                "fallback",
                "overloaded",
                "invalid",
                "deadline_exceeded",
                "failed",
            )
        }
        self._g_joules = telemetry.gauge("engine_batch_joules", ("engine",)).labels(*lab)
        self._threads = [
            threading.Thread(target=self._worker, name=f"{name}-batcher-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    # --- submission --------------------------------------------------------------------------

    def _budget_ns(self, budget: float) -> int:
        """``budget`` in ns, once the engine is known open and the budget sane."""
        if self._closed:
            raise Closed(f"{self.name} is closed; create a new engine")
        if not (isinstance(budget, _NUMBER) and math.isfinite(budget) and budget > 0):
            raise ValueError(f"budget must be a finite number of seconds > 0, got {budget!r}")
        return int(budget * 1e9)

    def _refuse(self, expected: float, budget_ns: int, n: int, what: str) -> Overloaded:
        """Count ``n`` requests refused by admission and the error that says why."""
        self._count("overloaded", n)
        return Overloaded(
            f"{self.name}: expected wait {expected / 1e6:.2f} ms {what}exceeds the budget "
            f"{budget_ns / 1e6:.2f} ms; retry later or with a larger budget",
            depth=len(self.queue),
            retry_after=expected / 1e9,
        )

    def _admit(self, request: Any, budget: float) -> _Request:
        budget_ns = self._budget_ns(budget)
        try:
            x = self.validate(request)
        except InvalidRequest:
            self._count("invalid")
            raise
        now = self.clock()
        expected = self.expected_wait_ns()
        if expected > budget_ns * self.headroom:
            raise self._refuse(expected, budget_ns, 1, "")
        parent = tracing.current_context()
        return _Request(x, None, now, now + budget_ns, parent, _core.now_ns())

    def expected_wait_ns(self, behind: int = 0) -> float:
        """How long a request submitted now would take to be answered, by the estimate:
        the batches ahead of it (queued and running) plus its own, each costing the moving
        average of a batch's model time, plus the batching wait when it would not fill a batch.
        ``behind``: how many requests submitted together come before it.
        """
        ahead = len(self.queue) + self._busy * self.max_batch + behind
        batches = ahead // self.max_batch + 1
        gather = self.max_wait_ns if ahead + 1 < self.max_batch else 0
        return batches * self._est_batch_ns + gather

    def submit(self, request: Any, budget: float) -> Future[InferenceResult]:
        """Queue one request with ``budget`` seconds to answer; raises at once when refused."""
        return self._enqueue(self._admit(request, budget))

    def submit_many(self, requests: Any, budget: float) -> list[Future[InferenceResult]]:
        """Queue several requests at once with one budget (one tick's worth, say): checked
        together, admitted together and queued in one step, which costs a fraction of as
        many ``submit`` calls. Raises, with nothing queued, on a bad budget, an invalid
        request (:class:`InvalidRequest`, naming its index) or when the last of them would
        wait longer than the budget (``Overloaded``). A request the full queue cannot take
        gets a future that already holds ``Overloaded``.
        """
        budget_ns = self._budget_ns(budget)
        try:
            rows = self._validate_many(requests)
        except InvalidRequest:
            self._count("invalid")
            raise
        k = len(rows)
        if k == 0:
            return []
        now = self.clock()
        expected = self.expected_wait_ns(behind=k - 1)
        if expected > budget_ns * self.headroom:
            raise self._refuse(expected, budget_ns, k, f"for the last of {k} requests ")
        parent, enqueued, deadline = tracing.current_context(), _core.now_ns(), now + budget_ns
        reqs = [_Request(x, Future(), now, deadline, parent, enqueued) for x in rows]
        try:
            queued = self.queue.put_many(reqs)
        except Overloaded:
            queued = 0
        with self._lock:
            self.stats.submitted += queued
        if queued < k:
            self._count("overloaded", k - queued)
            full = Overloaded(
                f"{self.name}: the queue is full ({len(self.queue)} waiting); "
                f"{k - queued} of {k} requests were refused",
                depth=len(self.queue),
                retry_after=self.expected_wait_ns() / 1e9,
            )
            for r in reqs[queued:]:
                r.future.set_exception(full)  # type: ignore[union-attr]
        return [r.future for r in reqs]  # type: ignore[misc]

    def _validate_many(self, requests: Any) -> list[npt.NDArray[np.float32]]:
        """Each request as its feature row, the whole tick checked in one pass: by the
        validator's ``validate_many`` when it has one (:class:`BatchValidator`), or with the
        default contract as one array; a failure is then located row by row."""
        many = getattr(self.validate, "validate_many", None)
        if many is not None:
            return list(many(requests))
        if self._default_validation:
            try:
                x = np.ascontiguousarray(requests, dtype=np.float32)
            except (TypeError, ValueError):
                x = None
            if (
                x is not None
                and x.ndim == 2
                and x.shape[1] == self.model.num_features
                and math.isfinite(_core.perf_absmax(x))
            ):
                return list(x)
        rows = []
        for i, r in enumerate(requests):
            try:
                rows.append(self.validate(r))
            except InvalidRequest as exc:
                raise InvalidRequest(f"request {i}: {exc}", exc.reasons, index=i) from exc
        return rows

    def _enqueue(self, req: _Request) -> Future[InferenceResult]:
        fut: Future[InferenceResult] = Future()
        req.future = fut
        try:
            self.queue.put_nowait(req)
        except Overloaded:
            self._count("overloaded")
            raise
        with self._lock:
            self.stats.submitted += 1
        return fut

    async def asubmit(self, request: Any, budget: float) -> InferenceResult:
        """The awaitable form of :meth:`submit`."""
        return await asyncio.wrap_future(self.submit(request, budget))

    def infer(self, request: Any, budget: float) -> InferenceResult:
        """Blocking: the answer, or the typed error. Runs inline when the engine is idle."""
        req = self._admit(request, budget)
        if len(self.queue) == 0 and self._run_lock.acquire(blocking=False):
            try:
                return self._run_inline(req)
            finally:
                self._run_lock.release()
        return self._enqueue(req).result()

    # --- the batcher -------------------------------------------------------------------------

    def _worker(self) -> None:
        q = self.queue
        while True:
            try:
                first = q.get(timeout=0.1)
            except DeadlineExceeded:
                continue
            except Closed:
                return
            batch: list[_Request] = [first]
            if self.max_batch > 1:
                # the window is real time even under a fake clock: it is a real wait
                left = first.enqueued_ns + self.max_wait_ns - _core.now_ns()
                try:
                    batch.extend(q.get_many(self.max_batch - 1, timeout=max(0.0, left / 1e9)))
                except Closed:
                    pass
            with self._run_lock:
                self._busy = 1
                try:
                    answers = self._run_batch(batch)
                except BaseException as exc:  # never lose a future, never kill the thread
                    answers = [exc] * len(batch)
                finally:
                    self._busy = 0
            for r, a in zip(batch, answers, strict=True):
                fut = r.future
                if fut is None:
                    continue
                if isinstance(a, BaseException):
                    fut.set_exception(a)
                else:
                    fut.set_result(a)

    def _run_inline(self, req: _Request) -> InferenceResult:
        """Run one request on the caller's thread (the run lock held): a batch of one whose
        span is both the request's and the batch's (``inline=True``), with the fewest steps
        on the way, since a batch-1 call is where the engine's own cost shows."""
        if req.deadline_ns <= self.clock() + int(self._est_batch_ns):
            self._count("deadline_exceeded")
            raise DeadlineExceeded(
                f"{self.name}: the expected model time leaves no room in the budget; "
                "the request was not run"
            )
        batch_id = next(self._batch_ids)
        x = req.x[None, :]
        padded = self.buckets[0] if self.buckets else 1
        if padded > 1:  # the model only knows the bucket sizes: pad up to the smallest
            x = np.concatenate([x, np.zeros((padded - 1, x.shape[1]), np.float32)])
        try:
            with tracing.span("engine.request", parent=req.parent, inline=True) as span:
                out, reason, start, model_ns, joules = self._execute(x, 1, span)
        except Exception:  # the model failed and there is no fallback
            self._count("failed")
            raise
        end = self.clock()
        self._settle(1, padded, batch_id, model_ns, reason is not None, joules, inline=True)
        wait = start - req.submit_ns if start > req.submit_ns else 0
        total = end - req.submit_ns if end > req.submit_ns else 0
        self._h_wait.record(wait)
        self._h_total.record(total)
        row = out[0]
        action = int(row.argmax())
        if self.recorder is not None:
            acts = np.array([action], np.int64)
            self._record(
                DecisionBatch(batch_id, x, 1, out, acts, reason is not None, reason, True, model_ns)
            )
        return InferenceResult(
            row, action, reason is not None, reason, 1, batch_id, wait, model_ns, total
        )

    def _run_batch(self, batch: list[_Request]) -> list[InferenceResult | BaseException]:
        """Run one batch; one answer per request, in order (a result or the error to raise)."""
        now = self.clock()
        answers: list[InferenceResult | BaseException] = [_PENDING] * len(batch)  # type: ignore[list-item]
        live: list[int] = []
        # a request that would finish after its deadline by the estimate is not run either:
        # its answer would be useless, and the model time is better spent on the others
        finish = now + int(self._est_batch_ns)
        for i, r in enumerate(batch):
            if r.deadline_ns <= finish:
                self._count("deadline_exceeded")
                answers[i] = DeadlineExceeded(
                    f"{self.name}: deadline {'passed' if r.deadline_ns <= now else 'too close'} "
                    f"after {(now - r.submit_ns) / 1e6:.2f} ms in the queue; the request was "
                    "not run"
                )
            else:
                live.append(i)
        if not live:
            return answers
        n = len(live)
        # one row each: concatenate and reshape is 4x faster than np.stack at 64 rows
        x = np.concatenate([batch[i].x for i in live]).reshape(n, -1)
        padded = n
        if self.buckets:
            padded = next(b for b in self.buckets if b >= n)
            if padded > n:
                x = np.concatenate([x, np.zeros((padded - n, x.shape[1]), np.float32)])
        batch_id = next(self._batch_ids)  # itertools.count: atomic under the GIL
        try:
            with tracing.span("engine.batch", engine=self.name, size=n, padded=padded) as bspan:
                out, reason, start, model_ns, joules = self._execute(x, n, bspan)
        except Exception as exc:  # the model failed and there is no fallback
            self._count("failed", n)
            for i in live:
                answers[i] = exc
            return answers
        fb = reason is not None
        self._settle(n, padded, batch_id, model_ns, fb, joules, inline=False)
        end = self.clock()
        link: dict[str, Any] = {
            "batch.trace_id": bspan.trace_id_hex,
            "batch.span_id": bspan.span_id_hex,
        }
        acts = out.argmax(axis=1)
        actions = acts.tolist()
        h_wait, h_total, span = self._h_wait, self._h_total, tracing.span
        for j, i in enumerate(live):
            r = batch[i]
            wait = start - r.submit_ns if start > r.submit_ns else 0
            total = end - r.submit_ns if end > r.submit_ns else 0
            h_wait.record(wait)
            h_total.record(total)
            answers[i] = InferenceResult(
                out[j], actions[j], fb, reason, n, batch_id, wait, model_ns, total, j
            )
            # the request's own span, in its caller's trace, pointing at the batch it rode in;
            # a request submitted outside any trace has no trace to join, and its timing is
            # already in the histograms and its batch's span: it gets no span of its own
            if r.parent is not None:
                with span("engine.request", parent=r.parent, **link):
                    pass
        if self.recorder is not None:
            self._record(DecisionBatch(batch_id, x, n, out, acts, fb, reason, False, model_ns))
        return answers

    def _record(self, decisions: DecisionBatch) -> None:
        """Hand one settled batch to the flight recorder; its failure is counted, not raised:
        a recorder must never change an answer."""
        recorder = self.recorder
        if recorder is None:
            return
        try:
            recorder(decisions)
        except Exception:
            _log.exception(
                "%s: the flight recorder failed on batch %d", self.name, decisions.batch_id
            )
            with self._lock:
                self.stats.recorder_errors += 1

    def _execute(
        self, x: npt.NDArray[np.float32], n: int, span: Any
    ) -> tuple[npt.NDArray[Any], str | None, int, int, float | None]:
        """The model on ``x`` through the breaker, or the fallback when that fails: the first
        ``n`` output rows, the fallback reason (None: the model answered), the start time,
        the model time and the joules (None: not measured). Raises the model's error when
        there is no fallback."""
        start = self.clock()
        counters = _energy.read_counters(energy=True, cpu=False) if self.energy else None
        reason: str | None = None
        try:
            out = self.breaker.call(self._call_model, x)[:n]
        except Exception as exc:
            out, reason = self._fall_back(exc, x, n, span)
        model_ns = self.clock() - start
        joules: float | None = None
        if counters is not None:
            joules = _energy.read_counters(energy=True, cpu=False).since(counters).total_joules
            if joules is not None:
                span.set_attribute("energy.joules", joules)
                self._g_joules.set(joules)
        return out, reason, start, model_ns, joules

    def _fall_back(
        self, exc: Exception, x: npt.NDArray[np.float32], n: int, span: Any
    ) -> tuple[npt.NDArray[Any], str]:
        """The fallback's answer for the first ``n`` rows after the model failed with ``exc``
        (CircuitOpen, the model's own error, NonFiniteOutput), and the reason; re-raises
        ``exc`` when there is no fallback."""
        reason = f"{type(exc).__name__}: {exc}"
        span.set_attribute("fallback.reason", reason)
        if self.fallback is None:
            raise exc
        return np.asarray(self.fallback(x[:n])), reason

    def _settle(
        self,
        n: int,
        padded: int,
        batch_id: int,
        model_ns: int,
        fb: bool,
        joules: float | None,
        *,
        inline: bool,
    ) -> None:
        """Account for one answered batch: the estimate, histograms, counters and stats."""
        self._learn(model_ns)
        self._h_model.record(model_ns)
        self._h_size.record(n)
        with self._lock:
            st = self.stats
            if inline:  # a submitted request was counted when it was queued
                st.submitted += n
                st.inline += 1
            st.batches += 1
            st.completed += n
            if fb:
                st.fallbacks += n
            st.batch_sizes[n] = st.batch_sizes.get(n, 0) + 1
            if len(self.batches) < self._history:
                self.batches.append(BatchRecord(batch_id, n, padded, model_ns, fb, joules))
        self._c["fallback" if fb else "ok"].inc(n)

    def _call_model(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        out = np.asarray(self._infer(x))
        if out.dtype == np.float32 and out.flags.c_contiguous:
            finite = math.isfinite(_core.perf_absmax(out))
        else:
            finite = out.dtype.kind != "f" or bool(np.isfinite(out).all())
        if not finite:
            raise NonFiniteOutput(f"{self.model.name} returned NaN or infinity")
        return out

    def _learn(self, model_ns: int) -> None:
        est = self._est_batch_ns
        if est == 0:
            self._est_batch_ns = float(model_ns)
            return
        # one stalled batch (a GC pause, a noisy neighbour) moves the estimate at most 4x the
        # current value's share, so it does not shed a burst of healthy requests; a lasting
        # slowdown still raises it within a few batches
        self._est_batch_ns = 0.8 * est + 0.2 * min(float(model_ns), 4.0 * est)

    def _count(self, outcome: str, n: int = 1) -> None:
        self._c[outcome].inc(n)
        with self._lock:
            st = self.stats
            if outcome == "overloaded":
                st.rejected_overloaded += n
            elif outcome == "invalid":
                st.rejected_invalid += n
            elif outcome == "deadline_exceeded":
                st.deadline_exceeded += n

    # --- lifecycle ---------------------------------------------------------------------------

    def warmup(self, rounds: int = 3) -> None:
        """Run the model on each batch size it will see, to compile it and seed the estimate.

        The estimate is seeded with the fastest round of the largest size: the first rounds
        pay for compilation and cold caches, and an estimate seeded from them can exceed the
        admission limit, so that no batch would ever run to bring it down.
        """
        sizes = self.buckets or (1, self.max_batch)
        best = math.inf
        for _ in range(rounds):
            for b in sizes:
                x = np.zeros((b, self.model.num_features), np.float32)
                start = self.clock()
                self.model.infer(x)
                if b == sizes[-1]:
                    best = min(best, self.clock() - start)
        if best < math.inf:
            self._est_batch_ns = float(best)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let the workers finish what is queued, and join them."""
        self._closed = True
        self.queue.close()
        for t in self._threads:
            t.join(timeout)

    def __enter__(self) -> InferenceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
