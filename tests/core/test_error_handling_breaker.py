"""CircuitBreaker: the state machine transition by transition (with an injected clock),
concurrent half-open probes, classification, fallback, decorators, context managers, logs."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from typing import Any

import pytest

from system0.core.error_handling import CircuitBreaker
from system0.errors import CircuitOpen

# An exception in a worker thread fails the test instead of passing as a warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

S = 1_000_000_000


class Clock:
    """An injectable clock in ns: the breaker sees time move only when the test says so."""

    def __init__(self) -> None:
        self.t = 10 * S

    def __call__(self) -> int:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += int(seconds * S)


def boom() -> None:
    raise ConnectionError("down")


def ok() -> str:
    return "ok"


def make(clock: Clock, **kw: Any) -> CircuitBreaker:
    base: dict[str, Any] = dict(
        window_calls=4,
        minimum_calls=4,
        failure_rate_threshold=0.5,
        wait=1.0,
        max_wait=8.0,
        backoff=2.0,
        jitter=0.0,
        half_open_permits=2,
        max_half_open=5.0,
        seed=1,
        clock=clock,
    )
    base.update(kw)
    return CircuitBreaker("svc", **base)


def fail_n(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(ConnectionError):
            b.call(boom)


def test_closed_stays_closed_below_minimum_calls_and_threshold() -> None:
    b = make(Clock())
    fail_n(b, 3)
    assert b.state == "closed", "3 calls < minimum_calls"
    assert b.call(ok) == "ok"
    assert b.state == "open", "3 failures of 4 >= 50%"


def test_successes_keep_it_closed() -> None:
    b = make(Clock())
    for _ in range(10):
        b.call(ok)
    with pytest.raises(ConnectionError):
        b.call(boom)
    assert b.state == "closed", "1 of the last 4 failed: 25% < 50%"


def test_open_rejects_without_calling_and_reports_retry_after() -> None:
    clock = Clock()
    b = make(clock)
    fail_n(b, 4)
    called = []
    clock.advance(0.25)
    with pytest.raises(CircuitOpen) as ei:
        b.call(lambda: called.append(1))
    assert called == []
    assert ei.value.retry_after == pytest.approx(0.75)
    assert b.stats().rejected == 1


def test_open_to_half_open_to_closed() -> None:
    clock = Clock()
    b = make(clock)
    fail_n(b, 4)
    clock.advance(1.0)
    assert b.state == "half_open"
    assert b.call(ok) == "ok"
    assert b.state == "half_open", "needs both probes"
    b.call(ok)
    assert b.state == "closed"
    assert b.stats().window_calls == 0, "a fresh window after closing"


def test_half_open_failure_reopens_with_exponential_backoff() -> None:
    clock = Clock()
    b = make(clock)
    fail_n(b, 4)
    waits = []
    for _ in range(4):
        waits.append(b.stats().open_remaining_s)
        clock.advance(waits[-1])
        fail_n(b, 1)
        b.call(ok)  # 1 of 2 probes failed: >= 50% -> open again
        assert b.state == "open"
    assert waits == pytest.approx([1.0, 2.0, 4.0, 8.0])
    clock.advance(8.0)
    b.call(ok)
    b.call(ok)
    assert b.state == "closed"
    fail_n(b, 4)
    assert b.stats().open_remaining_s == pytest.approx(1.0), "backoff resets after closing"


def test_half_open_permits_are_enforced_for_concurrent_probes() -> None:
    clock = Clock()
    b = make(clock, half_open_permits=3)
    fail_n(b, 4)
    clock.advance(1.0)
    release = threading.Event()
    entered = threading.Barrier(3 + 1, timeout=5)
    outcomes: list[str] = []
    lock = threading.Lock()

    def probe() -> None:
        entered.wait()
        release.wait(5)

    def attempt() -> None:
        try:
            b.call(probe)
            r = "ran"
        except CircuitOpen:
            r = "rejected"
            entered.wait()  # rejected ones do not hold the barrier hostage
        with lock:
            outcomes.append(r)

    threads = [threading.Thread(target=attempt) for _ in range(3)]
    for t in threads:
        t.start()
    entered.wait()  # the 3 permitted probes are inside the call now
    more = []
    for _ in range(5):
        try:
            b.call(ok)
        except CircuitOpen:
            more.append("rejected")
    release.set()
    for t in threads:
        t.join(5)
    assert sorted(outcomes) == ["ran", "ran", "ran"]
    assert more == ["rejected"] * 5
    assert b.state == "closed"


def test_many_threads_racing_for_half_open_permits_get_exactly_that_many() -> None:
    clock = Clock()
    b = make(clock, half_open_permits=2)
    fail_n(b, 4)
    clock.advance(1.0)
    start = threading.Barrier(8, timeout=5)
    results: list[bool] = []
    lock = threading.Lock()

    def go() -> None:
        start.wait()
        try:
            b._acquire()  # a probe that has not finished yet
            r = True
        except CircuitOpen:
            r = False
        with lock:
            results.append(r)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(results) == [False] * 6 + [True] * 2


def test_max_half_open_duration_reopens_a_stuck_breaker() -> None:
    clock = Clock()
    b = make(clock, half_open_permits=1, max_half_open=2.0)
    fail_n(b, 4)
    clock.advance(1.0)
    b._acquire()  # a probe that never reports back
    with pytest.raises(CircuitOpen):
        b.call(ok)
    clock.advance(2.0)
    assert b.state == "open", "half-open overstayed max_half_open"
    clock.advance(b.stats().open_remaining_s)
    assert b.call(ok) == "ok"
    assert b.state == "closed"


def test_slow_calls_trip_the_breaker() -> None:
    clock = Clock()
    b = make(clock, slow_call_duration=0.5, slow_call_rate_threshold=0.75)

    def slow() -> str:
        clock.advance(0.6)
        return "slow"

    for _ in range(3):
        assert b.call(slow) == "slow"
    assert b.state == "closed"
    b.call(slow)
    assert b.state == "open"
    assert b.stats().slow_calls == 4


def test_time_window_counts_only_recent_calls() -> None:
    clock = Clock()
    b = make(clock, window=10.0, window_calls=None, minimum_calls=3)
    fail_n(b, 2)
    clock.advance(11.0)
    fail_n(b, 1)
    assert b.state == "closed", "the two old failures left the window"
    fail_n(b, 2)
    assert b.state == "open"


def test_exception_classification() -> None:
    clock = Clock()
    b = make(
        clock,
        failure_exceptions=(ConnectionError, TimeoutError),
        ignore_exceptions=KeyError,
        is_failure=lambda e: "transient" not in str(e),
    )

    def raise_(e: BaseException) -> None:
        raise e

    for exc in [
        ValueError("bad input"),
        KeyError("k"),
        ConnectionError("transient"),
        ConnectionError("hard"),
    ]:
        with pytest.raises(type(exc)):
            b.call(raise_, exc)
    s = b.stats()
    assert (s.failures, s.successes, s.ignored) == (1, 2, 1)
    assert s.window_calls == 3, "ignored calls are not in the window"


def test_fallback_answers_failures_and_rejections() -> None:
    clock = Clock()
    seen: list[str] = []

    def fallback(exc: BaseException, *args: Any, **kwargs: Any) -> str:
        seen.append(type(exc).__name__)
        return f"fallback{args}{kwargs}"

    b = make(clock, fallback=fallback)
    for _ in range(4):
        assert b.call(lambda x, y=0: boom(), 1, y=2) == "fallback(1,){'y': 2}"
    assert b.state == "open"
    assert b.call(ok) == "fallback(){}"
    assert seen == ["ConnectionError"] * 4 + ["CircuitOpen"]


def test_sync_decorator_keeps_metadata_and_works_on_methods() -> None:
    clock = Clock()
    b = make(clock)

    @b
    def add(x: int, y: int) -> int:
        """Adds."""
        return x + y

    class Svc:
        def __init__(self) -> None:
            self.k = 10

        @b
        def get(self, x: int) -> int:
            return self.k + x

    assert add(1, y=2) == 3
    assert add.__name__ == "add" and add.__doc__ == "Adds."
    assert Svc().get(5) == 15
    assert b.stats().calls == 2


async def test_async_decorator_and_context_manager() -> None:
    clock = Clock()
    b = make(clock)

    @b
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise ConnectionError("down")
        return x * 2

    assert await fetch(2) == 4
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await fetch(-1)
    assert b.state == "open"
    with pytest.raises(CircuitOpen):
        await fetch(2)
    b.reset()
    async with b.guard():
        await asyncio.sleep(0)
    with pytest.raises(ConnectionError):
        async with b.guard():
            raise ConnectionError("x")
    assert b.stats().failures == 4


def test_sync_guard_records_outcomes() -> None:
    b = make(Clock())
    for _ in range(4):
        with pytest.raises(ConnectionError), b.guard():
            raise ConnectionError("x")
    with pytest.raises(CircuitOpen), b.guard():
        pass


def test_state_changes_are_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    changes: list[tuple[str, str, str]] = []
    b = make(clock, on_state_change=lambda *a: changes.append(a))
    with caplog.at_level(logging.INFO, logger="system0.breaker"):
        fail_n(b, 4)
        clock.advance(1.0)
        b.call(ok)
        b.call(ok)
    assert changes == [
        ("svc", "closed", "open"),
        ("svc", "open", "half_open"),
        ("svc", "half_open", "closed"),
    ]
    msgs = [r.getMessage() for r in caplog.records if r.name == "system0.breaker"]
    assert len(msgs) == 3 and "failure rate 100.0%" in msgs[0]
    assert caplog.records[0].levelno == logging.WARNING


def test_jitter_is_reproducible_with_a_seed() -> None:
    def wait_for(seed: int) -> float:
        clock = Clock()
        b = make(clock, jitter=0.5, seed=seed)
        fail_n(b, 4)
        return b.stats().open_remaining_s

    assert wait_for(42) == wait_for(42)
    assert 0.5 <= wait_for(42) <= 1.5
    assert len({wait_for(s) for s in range(8)}) > 1


def test_force_open_and_reset() -> None:
    b = make(Clock())
    b.force_open()
    assert b.state == "open"
    b.reset()
    assert b.state == "closed"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"window_calls": 0}, "window_calls"),
        ({"wait": -1.0}, "wait"),
        ({"wait": float("nan")}, "wait"),
        ({"jitter": 1.0}, "jitter"),
        ({"backoff": 0.5}, "backoff"),
        ({"half_open_permits": 0}, "half_open_permits"),
        ({"max_half_open": 0.0}, "max_half_open"),
        ({"failure_exceptions": "ValueError"}, "failure_exceptions"),
        ({"fallback": 3}, "fallback"),
    ],
)
def test_bad_configuration_is_a_value_error(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CircuitBreaker("bad", **kw)


def test_real_clock_short_wait() -> None:
    b = CircuitBreaker("real", window_calls=2, minimum_calls=2, wait=0.02, jitter=0.0)
    fail_n(b, 2)
    assert b.state == "open"
    threading.Event().wait(0.03)
    assert b.state == "half_open"
    assert b.call(ok) == "ok"
    assert b.state == "closed"


def test_a_breaker_whose_callback_refers_to_its_owner_is_collected() -> None:
    class Service:
        def __init__(self) -> None:
            self.breaker = CircuitBreaker("owned", on_state_change=self.changed, fallback=self.fb)
            self.guarded = self.breaker(self.work)

        def changed(self, *a: str) -> None:
            pass

        def fb(self, exc: BaseException) -> None:
            pass

        def work(self) -> int:
            return 1

    s = Service()
    assert s.guarded() == 1
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None
