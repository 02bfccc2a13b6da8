"""Queues, breakers and limiters publish their figures through the telemetry registry: after
real operations, the Prometheus text (parsed by prometheus_client) shows exact counts."""

from __future__ import annotations

import gc
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from system0.core import telemetry
from system0.core.error_handling import (
    BoundedQueue,
    CircuitBreaker,
    ConcurrencyLimiter,
    Policy,
    TokenBucket,
)
from system0.errors import CircuitOpen, Overloaded

S = 1_000_000_000


def unique(prefix: str) -> str:
    # The default registry is process-wide: a fresh name per test keeps tests independent.
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the default registry, keyed by (sample name, labels)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for fam in text_string_to_metric_families(telemetry.render_prometheus()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_queue_counts_depth_and_sojourn_reach_the_registry() -> None:
    name = unique("q")
    q = BoundedQueue(2, Policy.REJECT, name=name)
    q.put("a")
    q.put("b")
    with pytest.raises(Overloaded):
        q.put("c")
    time.sleep(0.002)
    assert q.get() == "a"

    m = scrape()
    assert value(m, "system0_queue_enqueued_total", queue=name) == 2
    assert value(m, "system0_queue_dequeued_total", queue=name) == 1
    assert value(m, "system0_queue_rejected_total", queue=name) == 1
    assert value(m, "system0_queue_depth", queue=name) == 1
    assert value(m, "system0_queue_sojourn_ns_count", queue=name) == 1
    assert value(m, "system0_queue_sojourn_ns_bucket", queue=name, le="1000000") == 0
    assert value(m, "system0_queue_sojourn_ns_bucket", queue=name, le="+Inf") == 1
    for reason in ("oldest", "newest"):
        assert value(m, "system0_queue_dropped_total", queue=name, reason=reason) == 0

    # stats() reads the same sojourn histogram, with telemetry's quantiles.
    s = q.stats()
    assert (s.enqueued, s.dequeued, s.rejected, s.depth) == (2, 1, 1, 1)
    assert s.sojourn_count == 1
    assert s.sojourn_sum_ns == value(m, "system0_queue_sojourn_ns_sum", queue=name)
    assert 2_000_000 <= s.sojourn_p50_ns == s.sojourn_max_ns < 1_000_000_000


def test_drops_and_sheds_are_counted_by_reason() -> None:
    oldest, newest, shed = unique("old"), unique("new"), unique("shed")
    qo = BoundedQueue(2, Policy.DROP_OLDEST, name=oldest)
    qn = BoundedQueue(2, Policy.DROP_NEWEST, name=newest)
    for i in range(5):
        qo.put(i)
        qn.put(i)
    qs = BoundedQueue(8, name=shed, sojourn_target=0.001)
    qs.put("late")
    qs.put("expires", ttl=0.001)
    time.sleep(0.005)
    assert qs.get_many(8, timeout=0) == []

    m = scrape()
    assert value(m, "system0_queue_dropped_total", queue=oldest, reason="oldest") == 3
    assert value(m, "system0_queue_enqueued_total", queue=oldest) == 5
    assert value(m, "system0_queue_depth", queue=oldest) == 2
    assert value(m, "system0_queue_dropped_total", queue=newest, reason="newest") == 3
    assert value(m, "system0_queue_enqueued_total", queue=newest) == 2
    assert value(m, "system0_queue_depth", queue=newest) == 2
    assert value(m, "system0_queue_shed_total", queue=shed, reason="sojourn") == 1
    assert value(m, "system0_queue_shed_total", queue=shed, reason="deadline") == 1
    assert value(m, "system0_queue_dequeued_total", queue=shed) == 0
    assert value(m, "system0_queue_depth", queue=shed) == 0
    assert value(m, "system0_queue_sojourn_ns_count", queue=shed) == 0


def test_batches_count_every_item() -> None:
    name = unique("batch")
    q = BoundedQueue(128, name=name)
    assert q.put_many(range(100)) == 100
    assert q.get_many(64, timeout=0) == list(range(64))
    q.put(100)

    m = scrape()
    assert value(m, "system0_queue_enqueued_total", queue=name) == 101
    assert value(m, "system0_queue_dequeued_total", queue=name) == 64
    assert value(m, "system0_queue_depth", queue=name) == 37
    assert value(m, "system0_queue_sojourn_ns_count", queue=name) == 64
    assert q.stats().sojourn_count == 64


def test_blocked_put_that_times_out_is_a_rejection() -> None:
    name = unique("block")
    q = BoundedQueue(1, Policy.BLOCK, name=name)
    q.put(1)
    with pytest.raises(Overloaded):
        q.put(2, timeout=0.01)
    m = scrape()
    assert value(m, "system0_queue_rejected_total", queue=name) == 1
    assert value(m, "system0_queue_depth", queue=name) == 1


def test_queues_sharing_a_name_add_up_while_stats_stay_exact() -> None:
    name = unique("shared")
    a = BoundedQueue(8, name=name)
    b = BoundedQueue(8, name=name)
    a.put_many([1, 2, 3])
    b.put_many([4, 5])
    assert b.get() == 4

    sa, sb = a.stats(), b.stats()
    assert (sa.enqueued, sa.dequeued, sa.depth) == (3, 0, 3)
    assert (sb.enqueued, sb.dequeued, sb.depth) == (2, 1, 1)
    m = scrape()
    assert value(m, "system0_queue_enqueued_total", queue=name) == 5
    assert value(m, "system0_queue_dequeued_total", queue=name) == 1
    assert value(m, "system0_queue_depth", queue=name) == 4
    # The sojourn histogram is the name's: both queues' stats() show the shared one.
    assert sa.sojourn_count == sb.sojourn_count == 1

    # A queue that goes away takes its waiting items out of the shared depth.
    del a
    gc.collect()
    m = scrape()
    assert value(m, "system0_queue_depth", queue=name) == 1
    assert value(m, "system0_queue_enqueued_total", queue=name) == 5


class Clock:
    def __init__(self) -> None:
        self.t = 10 * S

    def __call__(self) -> int:
        return self.t


def boom() -> None:
    raise ConnectionError("down")


def test_breaker_calls_failures_rejections_and_state() -> None:
    name = unique("br")
    clock = Clock()
    b = CircuitBreaker(
        name,
        window_calls=4,
        minimum_calls=4,
        failure_rate_threshold=0.5,
        wait=1.0,
        jitter=0.0,
        half_open_permits=1,
        seed=1,
        clock=clock,
    )
    assert value(scrape(), "system0_breaker_state", breaker=name) == 0
    for _ in range(2):
        assert b.call(lambda: 1) == 1
    for _ in range(2):
        with pytest.raises(ConnectionError):
            b.call(boom)
    assert b.state == "open"
    for _ in range(3):
        with pytest.raises(CircuitOpen):
            b.call(lambda: 1)

    m = scrape()
    assert value(m, "system0_breaker_calls_total", breaker=name) == 4
    assert value(m, "system0_breaker_failures_total", breaker=name) == 2
    assert value(m, "system0_breaker_rejections_total", breaker=name) == 3
    assert value(m, "system0_breaker_state", breaker=name) == 1

    clock.t += 2 * S
    assert b.state == "half_open"
    assert value(scrape(), "system0_breaker_state", breaker=name) == 2
    assert b.call(lambda: 1) == 1
    assert b.state == "closed"
    m = scrape()
    assert value(m, "system0_breaker_state", breaker=name) == 0
    assert value(m, "system0_breaker_calls_total", breaker=name) == 5
    s = b.stats()
    assert (s.calls, s.failures, s.rejected) == (5, 2, 3)


def test_limiter_and_bucket_rejections_and_permits_in_use() -> None:
    lname, bname = unique("lim"), unique("bucket")
    lim = ConcurrencyLimiter(2, name=lname)
    assert lim.try_acquire() and lim.try_acquire()
    assert not lim.try_acquire()
    with pytest.raises(Overloaded):
        lim.acquire(timeout=0.005)
    m = scrape()
    assert value(m, "system0_limiter_in_use", limiter=lname) == 2
    assert value(m, "system0_limiter_rejections_total", limiter=lname) == 2
    lim.release()
    assert value(scrape(), "system0_limiter_in_use", limiter=lname) == 1

    bucket = TokenBucket(1.0, 1, name=bname)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    assert value(scrape(), "system0_token_bucket_rejections_total", bucket=bname) == 1
