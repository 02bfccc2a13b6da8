"""Gates of issue 3 (backpressure): queues against queue.Queue / SimpleQueue / asyncio.Queue,
the circuit breaker against pybreaker. Same process, same work, interleaved rounds."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

from ratio import Gate

from system0.core.error_handling import BoundedQueue, CircuitBreaker, Policy


def _one_thread_ours(n: int) -> None:
    q = BoundedQueue(1024, Policy.BLOCK)
    put, get = q.put, q.get
    for i in range(n):
        put(i)
        get()


def _one_thread_queue(n: int) -> None:
    q: queue.Queue[int] = queue.Queue(1024)
    put, get = q.put, q.get
    for i in range(n):
        put(i)
        get()


def _one_thread_simple(n: int) -> None:
    q: queue.SimpleQueue[int] = queue.SimpleQueue()
    put, get = q.put, q.get
    for i in range(n):
        put(i)
        get()


def _cross_thread(produce: Callable[[int], None], consume: Callable[[int], None], n: int) -> None:
    t = threading.Thread(target=produce, args=(n,))
    t.start()
    consume(n)
    t.join()


def _xt_ours(n: int) -> None:
    q = BoundedQueue(1024, Policy.BLOCK)

    def produce(n: int) -> None:
        put = q.put
        for i in range(n):
            put(i)

    def consume(n: int) -> None:
        get = q.get
        for _ in range(n):
            get()

    _cross_thread(produce, consume, n)


def _xt_ours_batched(n: int) -> None:
    q = BoundedQueue(1024, Policy.BLOCK)
    batch = list(range(64))

    def produce(n: int) -> None:
        put_many = q.put_many
        for _ in range(n // 64):
            put_many(batch)

    def consume(n: int) -> None:
        get_many = q.get_many
        left = (n // 64) * 64
        while left:
            left -= len(get_many(64))

    _cross_thread(produce, consume, n)


def _xt_queue(n: int) -> None:
    q: queue.Queue[int] = queue.Queue(1024)

    def produce(n: int) -> None:
        put = q.put
        for i in range(n):
            put(i)

    def consume(n: int) -> None:
        get = q.get
        for _ in range(n):
            get()

    _cross_thread(produce, consume, n)


def _async_ours(n: int) -> None:
    async def run() -> None:
        q = BoundedQueue(1024)
        aput, aget = q.aput, q.aget
        for i in range(n):
            await aput(i)
            await aget()

    asyncio.run(run())


def _async_peer(n: int) -> None:
    async def run() -> None:
        q: asyncio.Queue[int] = asyncio.Queue(1024)
        put, get = q.put, q.get
        for i in range(n):
            await put(i)
            await get()

    asyncio.run(run())


def _work(x: int) -> int:
    return x


def _breaker_ours(n: int) -> None:
    b = CircuitBreaker("bench", seed=1)
    call = b.call
    for i in range(n):
        call(_work, i)


def _breaker_peer(n: int) -> None:
    import pybreaker

    b = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    call = b.call
    for i in range(n):
        call(_work, i)


def _decorated_ours(n: int) -> None:
    f = CircuitBreaker("bench", seed=1)(_work)
    for i in range(n):
        f(i)


def _decorated_peer(n: int) -> None:
    import pybreaker

    f = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)(_work)
    for i in range(n):
        f(i)


def gates() -> list[Gate]:
    return [
        Gate(
            "queue put+get, one thread",
            _one_thread_ours,
            _one_thread_queue,
            "queue.Queue",
            gate=5.0,
            goal=12.0,
            n=50_000,
            rounds=9,
        ),
        Gate(
            "queue put+get, one thread vs SimpleQueue (unbounded, C)",
            _one_thread_ours,
            _one_thread_simple,
            "queue.SimpleQueue",
            gate=0.0,
            goal=0.5,
            n=50_000,
            rounds=9,
        ),
        Gate(
            "queue producer->consumer thread, one by one",
            _xt_ours,
            _xt_queue,
            "queue.Queue(1024)",
            gate=2.0,
            goal=3.0,
            n=100_000,
            rounds=5,
        ),
        Gate(
            "queue producer->consumer thread, batches of 64",
            _xt_ours_batched,
            _xt_queue,
            "queue.Queue(1024) one by one",
            gate=2.0,
            goal=5.8,
            n=128_000,
            rounds=5,
        ),
        Gate(
            "queue asyncio aput+aget",
            _async_ours,
            _async_peer,
            "asyncio.Queue put+get",
            gate=0.0,
            goal=2.0,
            n=50_000,
            rounds=5,
        ),
        Gate(
            "breaker guarded call, closed",
            _breaker_ours,
            _breaker_peer,
            "pybreaker.CircuitBreaker.call",
            gate=3.0,
            goal=6.0,
            n=50_000,
            rounds=9,
        ),
        Gate(
            "breaker decorated function, closed",
            _decorated_ours,
            _decorated_peer,
            "pybreaker decorator",
            gate=3.0,
            goal=6.0,
            n=50_000,
            rounds=9,
        ),
    ]
