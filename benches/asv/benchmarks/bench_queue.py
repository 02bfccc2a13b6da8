"""asv history of the backpressure primitives, each beside its peer (issue 3)."""

from __future__ import annotations

import queue

import pybreaker

from system0.core.error_handling import (
    BoundedQueue,
    CircuitBreaker,
    ConcurrencyLimiter,
    TokenBucket,
)


def _work(x: int) -> int:
    return x


class PutGet:
    def setup(self) -> None:
        self.ours = BoundedQueue(1024)
        self.queue: queue.Queue[int] = queue.Queue(1024)
        self.simple: queue.SimpleQueue[int] = queue.SimpleQueue()

    def time_bounded_queue(self) -> None:
        put, get = self.ours.put, self.ours.get
        for i in range(1000):
            put(i)
            get()

    def time_queue_queue(self) -> None:
        put, get = self.queue.put, self.queue.get
        for i in range(1000):
            put(i)
            get()

    def time_simple_queue(self) -> None:
        put, get = self.simple.put, self.simple.get
        for i in range(1000):
            put(i)
            get()

    def time_batch_64(self) -> None:
        batch = list(range(64))
        for _ in range(16):
            self.ours.put_many(batch)
            self.ours.get_many(64)


class Guarded:
    def setup(self) -> None:
        self.ours = CircuitBreaker("asv", seed=1)
        self.peer = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
        self.limiter = ConcurrencyLimiter(8)
        self.bucket = TokenBucket(1e12, burst=1_000_000)

    def time_breaker_call(self) -> None:
        call = self.ours.call
        for i in range(1000):
            call(_work, i)

    def time_pybreaker_call(self) -> None:
        call = self.peer.call
        for i in range(1000):
            call(_work, i)

    def time_limiter_with(self) -> None:
        lim = self.limiter
        for _ in range(1000):
            with lim:
                pass

    def time_token_bucket_try_acquire(self) -> None:
        take = self.bucket.try_acquire
        for _ in range(1000):
            take()
