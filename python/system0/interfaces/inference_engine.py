"""``InferenceEngine``: answer inside a latency budget, or say at once why not.

``submit(request, budget)`` validates the request against its contract, decides admission,
and returns a ``concurrent.futures.Future`` of an :class:`InferenceResult` (``asubmit`` is the
awaitable form, ``infer`` the blocking one). On the way:

* **contract**: a request that breaks it raises :class:`InvalidRequest` (a ``ValidationError``
  with reason codes) before it reaches a queue or the model;
* **admission**: the engine keeps a moving estimate of how long a batch takes; when the work
  already queued means this request would wait longer than its budget, it is refused at once
  with ``Overloaded`` (``retry_after`` = the expected wait), never queued to fail later;
* **bounded queue** (the Rust queue of ``rust/queue``, reject policy): a full queue is
  ``Overloaded`` too;
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

All of that per request (admission, queue, gathering, deadlines, the answer slots, counters,
histograms and spans) runs in the Rust engine core (``rust/engine``, ``_core.EngineCore``)
without the GIL; Python is entered once per batch, by the thread that runs it: the model gets
the batch's float32 matrix without a copy, and the argmax, the non-finite check and the
answers are Rust's. ``submit_bytes`` / ``submit_many_bytes`` take GameState JSON or msgpack
bytes, decoded and featurized in Rust with no Python object per request (the HTTP path).

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
import atexit
import logging
import math
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from system0 import _core
from system0._core import EngineBatch, EngineFuture
from system0.core import energy as _energy
from system0.core import telemetry
from system0.core.error_handling import CircuitBreaker
from system0.errors import Closed, InvalidRequest, NonFiniteOutput
from system0.interfaces.model_interface import AIModelInterface

__all__ = [
    "BatchRecord",
    "BatchValidator",
    "DecisionBatch",
    "EngineFuture",
    "EngineStats",
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


@runtime_checkable
class BatchValidator(Protocol):
    """A validator that also checks a whole tick at once: ``validate_many(requests)`` returns
    the ``(len(requests), features)`` matrix, or raises :class:`InvalidRequest` naming the
    first refused request (``index``). ``submit_many`` then makes one call per tick."""

    def __call__(self, request: Any) -> npt.NDArray[np.float32]: ...

    def validate_many(self, requests: Sequence[Any]) -> npt.NDArray[np.float32]: ...


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


_NUMBER = (int, float)  # built once: `int | float` would build a union on every call


@dataclass(slots=True)
class EngineStats:
    """A snapshot of the engine's tallies (``engine.stats``; each read atomically in Rust)."""

    submitted: int = 0
    completed: int = 0
    fallbacks: int = 0
    rejected_overloaded: int = 0
    rejected_invalid: int = 0
    deadline_exceeded: int = 0
    batches: int = 0
    inline: int = 0
    recorder_errors: int = 0
    failed: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueView:
    """What callers may read of the engine's queue (it lives in Rust): its capacity and depth."""

    capacity: int
    _core: Any

    def __len__(self) -> int:
        return int(self._core.depth)


# Engines still open at exit are closed by atexit, before the interpreter stops its daemon
# threads: a batcher thread waiting in Rust (the GIL released) must not be the one that
# finds the interpreter gone when it takes the GIL back.
_OPEN: weakref.WeakSet[InferenceEngine] = weakref.WeakSet()


@atexit.register
def _close_open_engines() -> None:
    for engine in list(_OPEN):
        engine.close(timeout=1.0)


def _copy_answer(src: EngineFuture, dst: asyncio.Future[InferenceResult]) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
        return
    exc = src.exception()
    if exc is None:
        dst.set_result(src.result())
    else:
        dst.set_exception(exc)


def awaitable(fut: EngineFuture) -> asyncio.Future[InferenceResult]:
    """An asyncio future of the running loop that takes ``fut``'s answer when it comes (the
    engine's thread hands it over with ``call_soon_threadsafe``)."""
    loop = asyncio.get_running_loop()
    out: asyncio.Future[InferenceResult] = loop.create_future()
    fut.add_done_callback(lambda f: loop.call_soon_threadsafe(_copy_answer, f, out))
    return out


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

    The futures are ``EngineFuture`` objects (Rust): ``result``, ``exception``, ``done``,
    ``running``, ``cancelled``, ``cancel`` and ``add_done_callback`` as on
    ``concurrent.futures.Future``, and ``await future`` in a coroutine;
    ``concurrent.futures.wait`` and ``as_completed``, which
    read that class's private fields, do not take them (loop over ``result()`` instead).
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
        lab = (name,)
        # the families are made here, with their help text; the Rust core records into them
        telemetry.histogram("engine_queue_wait_ns", ("engine",)).labels(*lab)
        telemetry.histogram("engine_model_ns", ("engine",)).labels(*lab)
        telemetry.histogram("engine_total_ns", ("engine",)).labels(*lab)
        telemetry.histogram("engine_batch_size", ("engine",), unit="rows").labels(*lab)
        telemetry.counter("engine_requests", ("engine", "outcome"))
        self._g_joules = telemetry.gauge("engine_batch_joules", ("engine",)).labels(*lab)
        self._core = _core.EngineCore(
            name,
            model.num_features,
            max_batch,
            self.max_wait_ns,
            list(bks),
            queue_capacity,
            headroom,
            InferenceResult,
            InvalidRequest,
            validator=self.validate,
            fast_rows=self._default_validation,
            clock=None if clock is _core.now_ns else clock,
        )
        self.queue = QueueView(queue_capacity, self._core)
        self.batches: list[BatchRecord] = []
        self._history = history
        self._recorder_errors = 0
        self._run_lock = threading.Lock()  # held while a batch runs: one model call at a time
        self._threads = [
            threading.Thread(target=self._worker, name=f"{name}-batcher-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()
        _OPEN.add(self)

    # --- submission --------------------------------------------------------------------------

    @property
    def stats(self) -> EngineStats:
        """The tallies now (a copy: read it again for fresh figures)."""
        sub, done, fb, over, inv, late, failed, batches, inline, sizes = self._core.tally()
        return EngineStats(
            sub, done, fb, over, inv, late, batches, inline, self._recorder_errors, failed, sizes
        )

    @property
    def closed(self) -> bool:
        return bool(self._core.closed)

    def expected_wait_ns(self, behind: int = 0) -> float:
        """How long a request submitted now would take to be answered, by the estimate:
        the batches ahead of it (queued and running) plus its own, each costing the moving
        average of a batch's model time, plus the batching wait when it would not fill a batch.
        ``behind``: how many requests submitted together come before it.
        """
        return float(self._core.expected_wait_ns(behind))

    def submit(self, request: Any, budget: float) -> EngineFuture:
        """Queue one request with ``budget`` seconds to answer; raises at once when refused."""
        return self._core.submit(request, budget)

    def submit_many(self, requests: Any, budget: float) -> list[EngineFuture]:
        """Queue several requests at once with one budget (one tick's worth, say): checked
        together, admitted together and queued in one step, which costs a fraction of as
        many ``submit`` calls. Raises, with nothing queued, on a bad budget, an invalid
        request (:class:`InvalidRequest`, naming its index) or when the last of them would
        wait longer than the budget (``Overloaded``). A request the full queue cannot take
        gets a future that already holds ``Overloaded``.
        """
        if self.closed:
            raise Closed(f"{self.name} is closed; create a new engine")
        if not (isinstance(budget, _NUMBER) and math.isfinite(budget) and budget > 0):
            raise ValueError(f"budget must be a finite number of seconds > 0, got {budget!r}")
        fast = (
            self._default_validation
            and isinstance(requests, np.ndarray)
            and requests.dtype == np.float32
            and requests.ndim == 2
        )
        if fast:
            return self._core.submit_rows(requests, budget)
        try:
            rows = self._validate_many(requests)
        except InvalidRequest:
            self._core.count("invalid", 1)
            raise
        width = self.model.num_features
        matrix = np.ascontiguousarray(rows, np.float32).reshape(len(rows), width)
        return self._core.submit_rows(matrix, budget)

    def submit_bytes(self, data: bytes, budget: float) -> EngineFuture:
        """Queue one GameState given as JSON or msgpack bytes, decoded and featurized in Rust
        (no Python object made of it); a broken contract is :class:`InvalidRequest` with the
        codec's reason codes."""
        return self._core.submit_bytes(data, budget)

    def submit_many_bytes(self, items: Sequence[bytes], budget: float) -> list[EngineFuture]:
        """Queue a tick of GameStates given as bytes, decoded in one Rust call and queued in
        one step. One bad item refuses the whole call, with nothing queued
        (:class:`InvalidRequest` naming its ``index``); otherwise as :meth:`submit_many`."""
        return self._core.submit_many_bytes(items, budget)

    def _validate_many(self, requests: Any) -> Any:
        """Each request as its feature row, the whole tick checked in one pass: by the
        validator's ``validate_many`` when it has one (:class:`BatchValidator`), or with the
        default contract as one array; a failure is then located row by row."""
        many = getattr(self.validate, "validate_many", None)
        if many is not None:
            return many(requests)
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
                return x
        rows = []
        for i, r in enumerate(requests):
            try:
                rows.append(np.ascontiguousarray(self.validate(r), np.float32))
            except InvalidRequest as exc:
                raise InvalidRequest(f"request {i}: {exc}", exc.reasons, index=i) from exc
        return rows

    async def asubmit(self, request: Any, budget: float) -> InferenceResult:
        """The awaitable form of :meth:`submit`."""
        return await awaitable(self.submit(request, budget))

    def infer(self, request: Any, budget: float) -> InferenceResult:
        """Blocking: the answer, or the typed error. Runs inline when the engine is idle."""
        core = self._core
        if core.idle() and self._run_lock.acquire(blocking=False):
            try:
                if core.idle():
                    batch = core.inline(request, budget)
                    n, batch_id, padded = batch.open()
                    try:
                        self._run(batch, n, batch_id, padded)
                    except BaseException as exc:  # a raising fallback: answer, then raise
                        batch.fail(exc)
                        raise
                    result: InferenceResult = batch.inline_result()
                    return result
            finally:
                self._run_lock.release()
        answer: InferenceResult = core.submit(request, budget).result()
        return answer

    # --- the batcher -------------------------------------------------------------------------

    def _worker(self) -> None:
        core = self._core
        while True:
            try:
                batch = core.next_batch(0.1)  # waits in Rust, the GIL released
            except Closed:
                return
            if batch is None:
                continue
            with self._run_lock:
                try:
                    n, batch_id, padded = batch.open()
                    if n:
                        self._run(batch, n, batch_id, padded)
                except BaseException as exc:  # never lose a future, never kill the thread
                    batch.fail(exc)

    def _run(self, batch: EngineBatch, n: int, batch_id: int, padded: int) -> None:
        """Run one opened batch (the run lock held): the model through the breaker, or the
        fallback when that fails; then the records and the answers (settled in Rust)."""
        x: npt.NDArray[np.float32] = np.asarray(batch)  # the Rust matrix, not a copy
        clock = self.clock
        start = clock()
        counters = _energy.read_counters(energy=True, cpu=False) if self.energy else None
        reason: str | None = None
        try:
            self.breaker.call(self._call_model, x, batch)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if self.fallback is None:
                batch.fail(exc)
                return
            batch.set_outputs(self.fallback(x[:n]), False)
        model_ns = clock() - start
        joules: float | None = None
        if counters is not None:
            joules = _energy.read_counters(energy=True, cpu=False).since(counters).total_joules
            if joules is not None:
                self._g_joules.set(joules)
        fb = reason is not None
        if len(self.batches) < self._history:
            self.batches.append(BatchRecord(batch_id, n, padded, model_ns, fb, joules))
        if self.recorder is not None:
            out = batch.outputs
            acts = np.array(batch.actions(), np.int64)
            self._record(
                DecisionBatch(batch_id, x, n, out[:n], acts, fb, reason, batch.inline, model_ns)
            )
        batch.finish(reason, start, model_ns, clock(), joules)

    def _call_model(self, x: npt.NDArray[np.float32], batch: EngineBatch) -> None:
        """The model on ``x``; its outputs go to the batch, where Rust checks them for NaN
        and infinity (a failure of the model, for the breaker) and takes each row's action."""
        if not batch.set_outputs(self._infer(x)):
            raise NonFiniteOutput(f"{self.model.name} returned NaN or infinity")

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
            self._recorder_errors += 1  # only the thread holding the run lock gets here

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
            self._core.seed_estimate(float(best))

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let the workers finish what is queued, and join them; whatever is
        still unanswered after ``timeout`` (a hung model) is answered with ``Closed``."""
        self._core.close()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        self._core.abandon()
        _OPEN.discard(self)

    def __enter__(self) -> InferenceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
