"""Stream operators on bounded queues, with backpressure from end to end.

``Stream.from_iterable(source)`` starts a pipeline; ``map``, ``filter``, ``batch`` (by size,
or by time with ``max_wait``), ``window`` (sliding, by count) and ``Stream.merge`` each add a
stage: one thread that reads its upstream queue, applies the operator, and puts into its own
``BoundedQueue`` (block policy). A full queue blocks the stage that feeds it, which stops
reading its own upstream queue, and so on back to the source: a slow consumer slows the
whole pipeline down instead of growing a buffer anywhere. Every queue is bounded by
``capacity``, so the items in flight are at most (stages x (capacity + 1)).

The end of the stream travels as the queues closing (``Closed``), in order, after every item.
An exception in an operator or the source stops that stage and is raised to the consumer
(after the items that came before it); ``close()`` stops every stage at once.
Iterate with ``for item in stream`` or ``async for item in stream``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from system0 import _core
from system0.core import tracing
from system0.core.error_handling import BoundedQueue, Policy
from system0.errors import Closed, DeadlineExceeded, InvalidArgument

__all__ = ["Stream"]

T = TypeVar("T")
U = TypeVar("U")


class _Failure:
    """An exception travelling down the stream in place of an item."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Stream(Generic[T]):
    """One stage's output: a bounded queue filled by a thread. Build with the operators."""

    def __init__(
        self,
        body: Callable[[Callable[[Any], None]], None],
        *,
        capacity: int,
        upstream: tuple[Stream[Any], ...] = (),
        name: str = "stream",
    ) -> None:
        if not 1 <= capacity <= 1_000_000:
            raise InvalidArgument(f"capacity must be in [1, 1e6], got {capacity}")
        self.capacity = capacity
        self.name = name
        self.queue = BoundedQueue(capacity, Policy.BLOCK, name=name)
        self._upstream = upstream
        self.items_out = 0

        def emit(item: Any) -> None:
            self.queue.put(item)  # blocks while full: this is the backpressure
            self.items_out += 1

        def run() -> None:
            try:
                body(emit)
            except Closed:
                pass  # downstream closed: stop quietly
            except BaseException as exc:
                try:
                    self.queue.put(_Failure(exc))
                except Closed:
                    pass
            finally:
                self.queue.close()

        self._thread = threading.Thread(target=tracing.wrap(run), name=name, daemon=True)
        self._thread.start()

    # --- sources -----------------------------------------------------------------------------

    @classmethod
    def from_iterable(cls, source: Iterable[T], *, capacity: int = 64) -> Stream[T]:
        """A stream of the items of ``source``, pulled by a thread only as fast as they drain."""

        def body(emit: Callable[[Any], None]) -> None:
            for item in source:
                emit(item)

        return cls(body, capacity=capacity, name="source")

    @staticmethod
    def merge(*streams: Stream[T], capacity: int = 64) -> Stream[T]:
        """Items of all ``streams`` as they arrive (order kept within each); ends when all end."""
        if not streams:
            raise InvalidArgument("merge needs at least one stream")

        def body(emit: Callable[[Any], None]) -> None:
            errors: list[BaseException] = []

            def pump(s: Stream[T]) -> None:
                try:
                    for item in s._items():
                        emit(item)
                except Closed:
                    pass
                except BaseException as exc:
                    errors.append(exc)

            pumps = [threading.Thread(target=pump, args=(s,), daemon=True) for s in streams]
            for p in pumps:
                p.start()
            for p in pumps:
                p.join()
            if errors:
                raise errors[0]

        return Stream(body, capacity=capacity, upstream=tuple(streams), name="merge")

    # --- operators ---------------------------------------------------------------------------

    def _stage(
        self, body: Callable[[Callable[[Any], None]], None], name: str, capacity: int | None
    ) -> Stream[Any]:
        return Stream(body, capacity=capacity or self.capacity, upstream=(self,), name=name)

    def map(self, fn: Callable[[T], U], *, capacity: int | None = None) -> Stream[U]:
        def body(emit: Callable[[Any], None]) -> None:
            for item in self._items():
                emit(fn(item))

        return self._stage(body, "map", capacity)

    def filter(self, pred: Callable[[T], bool], *, capacity: int | None = None) -> Stream[T]:
        def body(emit: Callable[[Any], None]) -> None:
            for item in self._items():
                if pred(item):
                    emit(item)

        return self._stage(body, "filter", capacity)

    def batch(
        self, size: int, *, max_wait: float | None = None, capacity: int | None = None
    ) -> Stream[list[T]]:
        """Lists of up to ``size`` items; with ``max_wait`` (seconds), a batch is also emitted
        when that long has passed since its first item. The last batch may be short."""
        if size < 1:
            raise InvalidArgument(f"batch size must be >= 1, got {size}")
        if max_wait is not None and not max_wait > 0:
            raise InvalidArgument(f"max_wait must be > 0 seconds, got {max_wait}")
        q = self.queue

        def body(emit: Callable[[Any], None]) -> None:
            while True:
                try:
                    first = q.get()
                except Closed:
                    return
                buf = [self._unwrap(first)]
                deadline = _core.now_ns() + int(max_wait * 1e9) if max_wait else None
                try:
                    while len(buf) < size:
                        if deadline is None:
                            buf.append(self._unwrap(q.get()))
                            continue
                        left = (deadline - _core.now_ns()) / 1e9
                        if left <= 0:
                            break
                        try:
                            buf.append(self._unwrap(q.get(timeout=left)))
                        except DeadlineExceeded:
                            break
                except Closed:
                    emit(buf)
                    return
                emit(buf)

        return self._stage(body, "batch", capacity)

    def window(self, size: int, step: int = 1, *, capacity: int | None = None) -> Stream[list[T]]:
        """Sliding windows of ``size`` consecutive items, one every ``step`` items."""
        if size < 1 or step < 1:
            raise InvalidArgument(f"window size and step must be >= 1, got {size}, {step}")

        def body(emit: Callable[[Any], None]) -> None:
            buf: deque[T] = deque(maxlen=size)
            for i, item in enumerate(self._items()):
                buf.append(item)
                # the window that ends here starts at i - size + 1: one every `step` starts
                start = i - size + 1
                if start >= 0 and start % step == 0:
                    emit(list(buf))

        return self._stage(body, "window", capacity)

    # --- consuming ---------------------------------------------------------------------------

    @staticmethod
    def _unwrap(item: Any) -> Any:
        if isinstance(item, _Failure):
            raise item.exc
        return item

    def _items(self) -> Iterator[T]:
        for item in self.queue:
            yield self._unwrap(item)

    def __iter__(self) -> Iterator[T]:
        return self._items()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for item in self.queue:
            yield self._unwrap(item)

    def collect(self) -> list[T]:
        return list(self)

    def close(self) -> None:
        """Stop this stage and everything upstream of it; blocked puts raise and stages exit."""
        self.queue.close()
        for up in self._upstream:
            up.close()
