"""asyncio side of BoundedQueue and ConcurrencyLimiter: never blocks the loop, wakes promptly
when the other side acts from a thread or a task, loses no wakeup on cancellation."""

from __future__ import annotations

import asyncio
import collections
import threading
import time

import pytest

from system0.core.error_handling import BoundedQueue, ConcurrencyLimiter, Policy, TokenBucket
from system0.errors import Closed, DeadlineExceeded, Overloaded

# An exception in a worker thread fails the test instead of passing as a warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


async def test_aget_wakes_when_a_thread_puts() -> None:
    q = BoundedQueue(4)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    tick_task = asyncio.create_task(ticker())
    put_at: list[float] = []

    def produce() -> None:
        time.sleep(0.05)
        put_at.append(time.monotonic())
        q.put("hello")

    threading.Thread(target=produce).start()
    item = await asyncio.wait_for(q.aget(), 5)
    woke = time.monotonic()
    tick_task.cancel()
    assert item == "hello"
    assert ticks >= 10, "the loop kept running while aget waited"
    assert woke - put_at[0] < 0.05


async def test_aput_waits_for_room_made_by_a_task() -> None:
    q = BoundedQueue(1)
    await q.aput(1)
    putter = asyncio.create_task(q.aput(2))
    await asyncio.sleep(0.01)
    assert not putter.done()
    assert await q.aget() == 1
    assert await asyncio.wait_for(putter, 2) is True
    assert await q.aget() == 2


async def test_aput_wakes_when_a_thread_gets() -> None:
    q = BoundedQueue(1)
    q.put(1)
    threading.Timer(0.03, q.get).start()
    await asyncio.wait_for(q.aput(2), 5)
    assert q.get(timeout=1) == 2


async def test_async_timeouts_raise_typed_errors() -> None:
    q = BoundedQueue(1)
    with pytest.raises(DeadlineExceeded):
        await q.aget(timeout=0.02)
    await q.aput(1)
    with pytest.raises(Overloaded):
        await q.aput(2, timeout=0.02)
    with pytest.raises(ValueError, match="timeout"):
        await q.aput(2, timeout=-1)
    assert q.stats().depth == 1


async def test_non_block_policies_never_wait_in_aput() -> None:
    q = BoundedQueue(1, Policy.DROP_NEWEST)
    assert await q.aput(1) is True
    assert await q.aput(2) is False
    r = BoundedQueue(1, Policy.REJECT)
    await r.aput(1)
    with pytest.raises(Overloaded):
        await r.aput(2)


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    q = BoundedQueue(4)
    first = asyncio.create_task(q.aget())
    second = asyncio.create_task(q.aget())
    await asyncio.sleep(0.01)
    q.put("x")  # wakes `first` (oldest waiter)...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 2) == "x"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_async_for_drains_then_stops_at_close() -> None:
    q = BoundedQueue(8)

    def produce() -> None:
        for i in range(100):
            q.put(i)
        q.close()

    threading.Thread(target=produce).start()
    got = [x async for x in q]
    assert got == list(range(100))
    with pytest.raises(Closed):
        await q.aget()


async def test_close_wakes_async_waiters() -> None:
    q = BoundedQueue(1)
    getter = asyncio.create_task(q.aget())
    await asyncio.sleep(0.01)
    q.close()
    with pytest.raises(Closed):
        await asyncio.wait_for(getter, 2)


async def test_many_tasks_and_threads_deliver_each_item_once() -> None:
    q = BoundedQueue(8)
    n_tasks, n_threads, per = 4, 2, 500
    got: list[int] = []

    async def task_producer(base: int) -> None:
        for i in range(per):
            await q.aput(base + i)

    def thread_producer(base: int) -> None:
        for i in range(per):
            q.put(base + i)

    async def consumer() -> None:
        async for x in q:
            got.append(x)

    threads = [
        threading.Thread(target=thread_producer, args=(10**6 * (k + 10),)) for k in range(n_threads)
    ]
    consumers = [asyncio.create_task(consumer()) for _ in range(3)]
    for t in threads:
        t.start()
    await asyncio.gather(*(task_producer(10**6 * k) for k in range(n_tasks)))
    while any(t.is_alive() for t in threads):
        await asyncio.sleep(0.005)
    q.close()
    await asyncio.wait_for(asyncio.gather(*consumers), 10)
    c = collections.Counter(got)
    assert len(c) == (n_tasks + n_threads) * per
    assert set(c.values()) == {1}


async def test_limiter_async_context_and_wakeup_from_thread() -> None:
    lim = ConcurrencyLimiter(1, name="lim")
    lim.acquire()
    threading.Timer(0.03, lim.release).start()
    async with lim:
        assert lim.in_use == 1
    assert lim.in_use == 0
    lim.acquire()
    with pytest.raises(Overloaded):
        await lim.aacquire(timeout=0.02)
    lim.release()
    async with lim.permit(timeout=0.1):
        assert lim.in_use == 1
    assert lim.stats().rejected == 1


async def test_token_bucket_aacquire_waits_for_the_rate() -> None:
    b = TokenBucket(50.0, burst=1)
    await b.aacquire()
    t0 = time.monotonic()
    await b.aacquire()
    assert time.monotonic() - t0 >= 0.015
    with pytest.raises(Overloaded):
        await b.aacquire(timeout=0.0)


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    q = BoundedQueue(1, name="leak")
    for _ in range(50):
        t = asyncio.create_task(q.aget())
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
    assert q.stats().async_getters == 0
    q.put(1)
    assert q.get(timeout=0) == 1
    # Every cancelled waiter unregistered itself: the next put wakes a live one at once.
    getter = asyncio.create_task(q.aget())
    await asyncio.sleep(0)
    assert q.stats().async_getters == 1
    q.put(2)
    assert await asyncio.wait_for(getter, 1) == 2
    assert q.stats().async_getters == 0
