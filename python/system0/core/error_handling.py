"""Backpressure: bounded queues, admission control and circuit breakers.

The primitives every hot path of system0 stands on. The work happens in Rust
(``system0._core``): a lock-free bounded ring with an overflow policy, a GCRA token bucket, a
concurrency limiter and a circuit breaker whose state lives in atomics. This module adds the
asyncio side (``aput``/``aget``, ``aacquire``, async decorators and context managers), typed
stats snapshots, and defaults.

Every object takes a ``name`` (default ``"unnamed"``) and publishes its figures through the
telemetry registry (:mod:`system0.core.telemetry`, so ``render_prometheus()`` shows them), under
that name as the label ``queue``, ``breaker``, ``limiter`` or ``bucket``:

- queues: counters ``system0_queue_enqueued``, ``_dequeued``, ``_rejected``, ``_dropped``
  (``reason`` = ``oldest`` | ``newest``), ``_shed`` (``reason`` = ``sojourn`` | ``deadline``),
  the gauge ``system0_queue_depth`` and the histogram ``system0_queue_sojourn_ns``;
- breakers: counters ``system0_breaker_calls``, ``_failures``, ``_rejections`` and the gauge
  ``system0_breaker_state`` (0 closed, 1 open, 2 half-open), set on every transition;
- limiters: ``system0_limiter_rejections`` and ``system0_limiter_in_use``; token buckets:
  ``system0_token_bucket_rejections``.

The handles are resolved once, at construction; the hot path records into atomics. Objects
that share a name share these series (their counts add up there), while each object's
``stats()`` counters stay exact for that object alone. Each family holds at most 10 000
distinct names: building an object under one more raises ``CardinalityError``.

``stats()`` returns a frozen snapshot. Breaker state changes also go to the ``logging`` logger
``system0.breaker`` and to the optional ``on_state_change(name, old, new)`` callback.

Overload is always answered, never silently absorbed: ``Overloaded`` (with ``depth`` and
``retry_after``), ``DeadlineExceeded``, ``CircuitOpen`` (with ``retry_after``) or ``Closed``, all
from :mod:`system0.errors`; drops under the DROP policies are counted.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast, overload

from system0 import _core

# The stats snapshots are frozen Rust classes (documented in ``_core.pyi``), each built in one
# call: re-exported here under their public names.
from system0._core import BreakerStats, BucketStats, LimiterStats, QueueStats
from system0.errors import CircuitOpen, Closed, DeadlineExceeded, InvalidArgument, Overloaded

__all__ = [
    "BoundedQueue",
    "BreakerState",
    "BreakerStats",
    "BucketStats",
    "CircuitBreaker",
    "ConcurrencyLimiter",
    "LimiterStats",
    "Policy",
    "QueueStats",
    "TokenBucket",
    "live_stats",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]


class Policy(enum.StrEnum):
    """What a full :class:`BoundedQueue` does with a new item."""

    BLOCK = "block"  # wait (GIL released) up to the put's timeout, then Overloaded
    REJECT = "reject"  # raise Overloaded(depth, retry_after) at once
    DROP_OLDEST = "drop_oldest"  # evict the oldest item (counted) and take the new one
    DROP_NEWEST = "drop_newest"  # drop the new item (counted); put returns False


def _check_timeout(owner: str, timeout: float | None) -> None:
    if timeout is not None and not timeout >= 0:  # also catches NaN
        raise InvalidArgument(
            f"{owner}: timeout must be None (wait forever) or a number of seconds >= 0, "
            f"got {timeout}"
        )


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Waker:
    """Registered with the Rust side; called (GIL held, any thread) when the awaited
    condition may now hold. Resolves the task's future on its own loop."""

    __slots__ = ("fired", "fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[None] = loop.create_future()
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        try:
            # The non-raising form: producers on plain threads have no running loop.
            if asyncio.events._get_running_loop() is self.loop:
                _resolve(self.fut)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.fut)
        except RuntimeError:
            pass  # the waiter's loop is closed: nobody is left to wake


async def _wait(waker: _Waker, deadline: float | None) -> bool:
    """Wait for the waker; False when the deadline (loop time) passed first."""
    if deadline is None:
        await waker.fut
        return True
    remaining = deadline - waker.loop.time()
    if remaining <= 0:
        return False
    try:
        async with asyncio.timeout(remaining):
            await waker.fut
    except TimeoutError:
        return False
    return True


_EMPTY: Any = object()


async def _await_turn(
    attempt: Callable[[], Any],
    register: Callable[[_Waker], bool],
    hand_on: Callable[[_Waker], None],
    timeout: float | None,
    give_up: Callable[[], BaseException],
) -> Any:
    """The one waiting loop of every awaitable primitive (``aput``, ``aget``, ``aacquire``).

    ``attempt()`` tries without waiting and returns the result, or ``_EMPTY`` when it must
    wait; ``register(waker)`` asks the Rust side to call the waker when trying again may
    succeed (False: it already may, so retry after yielding); ``hand_on(waker)`` unregisters
    a waiter that leaves without using its turn and passes a wakeup it had received on, so
    none is lost. On timeout, one last attempt, then ``give_up()`` is raised.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        result = attempt()
        if result is not _EMPTY:
            return result
        waker = _Waker(loop)
        if not register(waker):
            await asyncio.sleep(0)  # ready already, or a close is settling: retry after yielding
            continue
        try:
            woken = await _wait(waker, deadline)
        except BaseException:
            hand_on(waker)
            raise
        if not woken:
            hand_on(waker)
            result = attempt()
            if result is not _EMPTY:
                return result
            raise give_up()


# Every live primitive, so that a metrics collector can publish all of them at scrape time
# (`live_stats()`) without the code that creates them having to register anything.
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def live_stats() -> list[QueueStats | BreakerStats | LimiterStats | BucketStats]:
    """A stats snapshot of every live queue, breaker, limiter and token bucket, ordered by
    kind and name: what the telemetry registry publishes as gauges and counters."""
    snaps = [obj.stats() for obj in list(_LIVE)]
    return sorted(snaps, key=lambda s: (type(s).__name__, s.name))


class BoundedQueue(_core.BoundedQueue):
    """A bounded MPMC queue of Python objects over a lock-free Rust ring.

    ``BoundedQueue(capacity, policy=Policy.BLOCK, *, name=None, sojourn_target=None,
    sojourn_interval=0.0)``. ``sojourn_target`` (seconds) sheds, at dequeue, items that waited
    longer (CoDel-style: once the sojourn stayed above target for ``sojourn_interval``).
    ``put(item, timeout=None, *, ttl=None, deadline_ns=None)`` gives an item a deadline: an
    expired item is never handed to a consumer.

    ``get`` raises ``DeadlineExceeded`` on timeout and ``Closed`` once the queue is closed and
    drained (end-of-stream); iterating (``for``/``async for``) stops there instead.
    """

    if not TYPE_CHECKING:  # the constructor's signature is the Rust one, in _core.pyi

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__()
            _LIVE.add(self)  # for live_stats()

    def stats(self) -> QueueStats:
        return self._stats()

    async def aput(
        self,
        item: object,
        timeout: float | None = None,
        *,
        ttl: float | None = None,
        deadline_ns: int | None = None,
    ) -> bool:
        """Awaitable put: never blocks the loop; under BLOCK it waits for room up to
        ``timeout`` seconds, then raises Overloaded. Returns False when DROP_NEWEST dropped."""
        r = self._try_put(item, ttl, deadline_ns)
        if r is not None:
            return r
        _check_timeout(f"queue {self.name!r}", timeout)

        def attempt() -> Any:
            done = self._try_put(item, ttl, deadline_ns)
            return _EMPTY if done is None else done

        def full() -> Overloaded:
            return Overloaded(
                f"queue {self.name!r} is full ({len(self)}/{self.capacity} items): aput "
                f"timed out after {timeout} s; add consumers or raise the capacity",
                len(self),
                1e-3,
            )

        done: bool = await _await_turn(
            attempt,
            self._add_put_waiter,
            lambda waker: self._hand_on(waker, put=True),
            timeout,
            full,
        )
        return done

    async def aget(self, timeout: float | None = None) -> Any:
        """Awaitable get: never blocks the loop; wakes as soon as a producer (thread or task)
        puts. Raises DeadlineExceeded on timeout and Closed at end-of-stream."""
        item = self._try_get(_EMPTY)
        if item is not _EMPTY:
            return item
        _check_timeout(f"queue {self.name!r}", timeout)

        def late() -> DeadlineExceeded:
            return DeadlineExceeded(
                f"queue {self.name!r}: no item arrived within {timeout} s; the producers "
                "are slower than this timeout"
            )

        return await _await_turn(
            lambda: self._try_get(_EMPTY),
            self._add_get_waiter,
            lambda waker: self._hand_on(waker, put=False),
            timeout,
            late,
        )

    def _hand_on(self, waker: _Waker, *, put: bool) -> None:
        """A waiter leaves without using its turn: unregister it, and if it had already been
        woken pass the wakeup to the next waiter so that none is lost."""
        self._remove_waiter(waker)
        if waker.fired:
            if put:
                self._wake_putters(1)
            else:
                self._wake_getters(1)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.aget()
            except Closed:
                return


class TokenBucket(_core.TokenBucket):
    """A rate limiter: ``rate`` tokens per second, at most ``burst`` at once (GCRA, one atomic).

    ``TokenBucket(rate, burst=None, *, name=None)``; ``burst`` defaults to ``ceil(rate)`` (one
    second's worth). Asking for more than ``burst`` tokens at once is a ValueError.

    ``try_acquire(n=1) -> bool`` never waits; ``acquire(n=1, timeout=None)`` waits (GIL
    released) for tokens due within ``timeout`` and raises Overloaded with ``retry_after``
    otherwise; ``await aacquire(...)`` does the same without blocking the loop.
    """

    if not TYPE_CHECKING:  # the constructor's signature is the Rust one, in _core.pyi

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__()
            _LIVE.add(self)  # for live_stats()

    def stats(self) -> BucketStats:
        return self._stats()

    async def aacquire(self, n: int = 1, timeout: float | None = None) -> None:
        # The tokens are reserved now; a task cancelled while sleeping has still spent them.
        wait = self._reserve(n, timeout)
        if wait > 0:
            await asyncio.sleep(wait)


class _Permit:
    """``limiter.permit(timeout)``: a context manager (sync and async) for one permit."""

    __slots__ = ("_limiter", "_timeout")

    def __init__(self, limiter: ConcurrencyLimiter, timeout: float | None) -> None:
        self._limiter = limiter
        self._timeout = timeout

    def __enter__(self) -> None:
        self._limiter.acquire(self._timeout)

    def __exit__(self, *exc: object) -> None:
        self._limiter.release()

    async def __aenter__(self) -> None:
        await self._limiter.aacquire(self._timeout)

    async def __aexit__(self, *exc: object) -> None:
        self._limiter.release()


class ConcurrencyLimiter(_core.ConcurrencyLimiter):
    """At most ``limit`` concurrent holders.

    ``try_acquire() -> bool``; ``acquire(timeout=None)`` (GIL released while waiting, raises
    Overloaded on timeout); ``release()``; ``with limiter:`` / ``async with limiter:`` wait for
    a permit; ``with limiter.permit(timeout=0.1):`` bounds the wait.
    """

    if not TYPE_CHECKING:  # the constructor's signature is the Rust one, in _core.pyi

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__()
            _LIVE.add(self)  # for live_stats()

    def stats(self) -> LimiterStats:
        return self._stats()

    def permit(self, timeout: float | None = None) -> _Permit:
        _check_timeout(f"concurrency limiter {self.name!r}", timeout)
        return _Permit(self, timeout)

    async def aacquire(self, timeout: float | None = None) -> None:
        if self._try_take():
            return
        _check_timeout(f"concurrency limiter {self.name!r}", timeout)

        def hand_on(waker: _Waker) -> None:
            self._remove_waiter(waker)
            if waker.fired:
                self._wake(1)

        def busy() -> Overloaded:
            self._count_rejected()
            return Overloaded(
                f"concurrency limiter {self.name!r}: all {self.limit} permits in use for "
                f"{timeout} s; retry later or raise the limit",
                self.in_use,
                1e-3,
            )

        await _await_turn(
            lambda: True if self._try_take() else _EMPTY, self._add_waiter, hand_on, timeout, busy
        )

    async def __aenter__(self) -> None:
        await self.aacquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class _Guard:
    """``breaker.guard()``: one guarded block, sync (``with``) or async (``async with``)."""

    __slots__ = ("_breaker", "_permit")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._permit: _core.BreakerPermit | None = None

    def __enter__(self) -> None:
        self._permit = self._breaker._acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._permit is not None:
            self._breaker._record(self._permit, exc)
            self._permit = None

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class CircuitBreaker(_core.CircuitBreaker):
    """A circuit breaker shared by all threads (state in Rust atomics).

    ``CircuitBreaker(name=None, *, failure_rate_threshold=0.5, minimum_calls=10,
    window_calls=None (= 100), window=None, window_buckets=10, slow_call_duration=None,
    slow_call_rate_threshold=1.0, wait=30.0, max_wait=300.0, backoff=2.0, jitter=0.1,
    half_open_permits=1, max_half_open=60.0, seed=None, failure_exceptions=None,
    ignore_exceptions=None, is_failure=None, fallback=None, on_state_change=None, clock=None)``.

    The window is the last ``window_calls`` calls, or the last ``window`` seconds when given.
    Once it holds ``minimum_calls`` and the failure (or slow-call) rate reaches its threshold,
    the breaker opens for ``wait * backoff**(k-1)`` seconds (k = consecutive openings, capped
    at ``max_wait``, spread by +-``jitter`` from a generator seeded with ``seed``), then lets
    ``half_open_permits`` probes through; their verdict closes or re-opens it, and a half-open
    state lasting ``max_half_open`` seconds re-opens it. Exceptions count as failures when they
    are ``failure_exceptions`` (default ``Exception``) and ``is_failure(exc)`` (if given) is
    true; ``ignore_exceptions`` count as neither; other exceptions count as successes.
    ``fallback(exc, *args, **kwargs)`` answers rejected and failed calls. ``clock`` returns
    nanoseconds (tests inject one).

    Use ``breaker.call(fn, *args)``, ``await breaker.acall(afn, *args)``, ``@breaker`` on sync
    or async functions, or ``with breaker.guard():`` / ``async with breaker.guard():``.
    """

    if not TYPE_CHECKING:  # the constructor's signature is the Rust one, in _core.pyi

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__()
            _LIVE.add(self)  # for live_stats()

    def stats(self) -> BreakerStats:
        return self._stats()

    def guard(self) -> _Guard:
        return _Guard(self)

    async def acall(self, func: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
        try:
            permit = self._acquire()
        except CircuitOpen as e:
            fb = self._fallback
            if fb is None:
                raise
            return cast(R, await _maybe_await(fb(e, *args, **kwargs)))
        try:
            result = await func(*args, **kwargs)
        except BaseException as e:
            kind = self._record(permit, e)
            fb = self._fallback
            if kind == "failure" and fb is not None:
                return cast(R, await _maybe_await(fb(e, *args, **kwargs)))
            raise
        self._record(permit, None)
        return result

    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, func: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function (sync or async) so every call goes through the breaker."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(func, *args, **kwargs)

            return wrapper
        guarded = _core.GuardedCall(self, func)
        functools.update_wrapper(guarded, func)
        return cast(Callable[P, Any], guarded)
