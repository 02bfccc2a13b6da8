"""TokenBucket and ConcurrencyLimiter with real time and real threads."""

from __future__ import annotations

import threading
import time

import pytest

from system0.core.error_handling import ConcurrencyLimiter, TokenBucket
from system0.errors import Overloaded

# An exception in a worker thread fails the test instead of passing as a warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


def test_bucket_allows_the_burst_then_refuses() -> None:
    b = TokenBucket(10.0, burst=3, name="api")
    assert [b.try_acquire() for _ in range(4)] == [True, True, True, False]
    s = b.stats()
    assert (s.name, s.acquired, s.rejected) == ("api", 3, 1)
    assert b.available() < 1.0


def test_bucket_refills_at_the_rate() -> None:
    b = TokenBucket(100.0, burst=1)
    assert b.try_acquire()
    assert not b.try_acquire()
    time.sleep(0.012)
    assert b.try_acquire()


def test_bucket_blocking_acquire_waits_and_timeout_raises_with_hint() -> None:
    b = TokenBucket(50.0, burst=2)
    b.acquire(2)
    t0 = time.monotonic()
    b.acquire()  # due 20 ms later
    assert time.monotonic() - t0 >= 0.015
    with pytest.raises(Overloaded) as ei:
        b.acquire(2, timeout=0.001)
    assert 0.0 < ei.value.retry_after <= 0.1


def test_bucket_rate_holds_across_threads() -> None:
    b = TokenBucket(200.0, burst=1)
    got = []

    def worker() -> None:
        end = time.monotonic() + 0.2
        n = 0
        while time.monotonic() < end:
            if b.try_acquire():
                n += 1
        got.append(n)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span = time.monotonic() - t0
    # GCRA's guarantee: never more than burst + rate * elapsed, whatever the threads do.
    # (A loaded machine may give fewer, so there is no lower bound beyond "some".)
    assert 1 <= sum(got) <= 1 + 200.0 * span


@pytest.mark.parametrize(
    ("args", "match"),
    [((0.0,), "rate"), ((-1.0,), "rate"), ((float("nan"),), "rate"), ((10.0, 0), "burst")],
)
def test_bucket_bad_input(args: tuple[float, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TokenBucket(*args)  # type: ignore[arg-type]


def test_bucket_asking_for_more_than_the_burst_is_an_error() -> None:
    b = TokenBucket(10.0, burst=2)
    with pytest.raises(ValueError, match="burst"):
        b.try_acquire(3)
    with pytest.raises(ValueError, match="timeout"):
        b.acquire(1, timeout=-1.0)


def test_limiter_non_blocking_and_release() -> None:
    lim = ConcurrencyLimiter(2, name="db")
    assert lim.try_acquire() and lim.try_acquire()
    assert not lim.try_acquire()
    lim.release()
    assert lim.try_acquire()
    lim.release()
    lim.release()
    with pytest.raises(ValueError, match="without a matching acquire"):
        lim.release()
    s = lim.stats()
    assert (s.acquired, s.rejected, s.peak_in_use, s.in_use) == (3, 1, 2, 0)


def test_limiter_bounds_concurrency_across_threads() -> None:
    lim = ConcurrencyLimiter(3)
    active = 0
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal active, peak
        for _ in range(20):
            with lim:
                with lock:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.0005)
                with lock:
                    active -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 3
    assert lim.in_use == 0
    assert lim.stats().acquired == 160


def test_limiter_blocking_acquire_times_out_and_wakes_on_release() -> None:
    lim = ConcurrencyLimiter(1)
    lim.acquire()
    with pytest.raises(Overloaded):
        lim.acquire(timeout=0.02)
    with pytest.raises(Overloaded), lim.permit(timeout=0.0):
        pass
    threading.Timer(0.02, lim.release).start()
    t0 = time.monotonic()
    lim.acquire(timeout=5)
    assert time.monotonic() - t0 < 2
    assert lim.in_use == 1


def test_limiter_bad_input() -> None:
    with pytest.raises(ValueError, match="limit"):
        ConcurrencyLimiter(0)
    with pytest.raises(ValueError, match="timeout"):
        ConcurrencyLimiter(1).acquire(timeout=float("nan"))
