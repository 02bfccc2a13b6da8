"""Stream operators on bounded queues: results, ends of stream, errors, backpressure."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from system0.interfaces.data_pipeline import Stream


def test_map_filter_batch_in_order() -> None:
    out = (
        Stream.from_iterable(range(20), capacity=4)
        .map(lambda x: x * 3)
        .filter(lambda x: x % 2 == 0)
        .batch(4)
        .collect()
    )
    assert out == [[0, 6, 12, 18], [24, 30, 36, 42], [48, 54]]


def test_batch_by_time_emits_partial_batches() -> None:
    def slow() -> Iterator[int]:
        for i in range(3):
            yield i
            time.sleep(0.15)

    batches = Stream.from_iterable(slow()).batch(100, max_wait=0.05).collect()
    assert batches == [[0], [1], [2]]


def test_sliding_windows() -> None:
    assert Stream.from_iterable(range(6)).window(3).collect() == [
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 4],
        [3, 4, 5],
    ]
    assert Stream.from_iterable(range(7)).window(2, step=3).collect() == [[0, 1], [3, 4]]


def test_merge_keeps_per_stream_order_and_ends_when_all_end() -> None:
    a = Stream.from_iterable(range(0, 50))
    b = Stream.from_iterable(range(100, 130))
    out = Stream.merge(a, b.map(lambda x: x)).collect()
    assert sorted(out) == [*range(50), *range(100, 130)]
    assert [x for x in out if x < 100] == list(range(50))
    assert [x for x in out if x >= 100] == list(range(100, 130))


def test_an_operator_error_reaches_the_consumer_after_earlier_items() -> None:
    def boom(x: int) -> int:
        if x == 3:
            raise ZeroDivisionError("bad item 3")
        return x

    seen: list[int] = []
    with pytest.raises(ZeroDivisionError, match="bad item 3"):
        for x in Stream.from_iterable(range(10)).map(boom):
            seen.append(x)
    assert seen == [0, 1, 2]


def test_a_slow_consumer_holds_the_source_back() -> None:
    produced = 0
    lock = threading.Lock()

    def source() -> Iterator[int]:
        nonlocal produced
        for i in range(10_000):
            with lock:
                produced += 1
            yield i

    cap = 2
    stream = Stream.from_iterable(source(), capacity=cap).map(lambda x: x, capacity=cap).batch(2)
    it = iter(stream)
    first = next(it)
    time.sleep(0.3)  # the consumer stalls; every queue fills, then the source blocks
    with lock:
        stalled_at = produced
    # queued: source and map queues (cap items each), the batch queue (cap batches of 2);
    # in hand: the batch stage's buffer (2), the map stage (1), the source (1); consumed
    assert stalled_at <= cap + cap + 2 * cap + 2 + 1 + 1 + len(first)
    time.sleep(0.2)
    with lock:
        assert produced == stalled_at  # still held back, not buffering
    rest = [x for batch in it for x in batch]
    assert first + rest == list(range(10_000))


def test_close_stops_a_blocked_pipeline() -> None:
    stream = Stream.from_iterable(iter(range(10**9)), capacity=1).map(lambda x: x)
    next(iter(stream))
    stream.close()
    time.sleep(0.1)
    assert stream.queue.closed


def test_bad_operator_arguments() -> None:
    s = Stream.from_iterable([1])
    with pytest.raises(ValueError):
        s.batch(0)
    with pytest.raises(ValueError):
        s.batch(2, max_wait=0)
    with pytest.raises(ValueError):
        s.window(0)
    with pytest.raises(ValueError):
        Stream.from_iterable([1], capacity=0)
    with pytest.raises(ValueError):
        Stream.merge()


async def test_async_iteration() -> None:
    got = [x async for x in Stream.from_iterable(range(5)).map(lambda x: x + 1)]
    assert got == [1, 2, 3, 4, 5]
