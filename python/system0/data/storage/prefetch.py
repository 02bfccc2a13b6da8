"""Deterministic batch order and background prefetch with bounded memory.

Order: rows are first put in the order of an explicit key (a stable sort on one or more
columns; dotted names reach into structs, e.g. ``metadata.step``), so the physical layout (how
many segments, which tier, whether compaction merged them) never shows. A seed then shuffles
them with a permutation defined here, SplitMix64 over the row ranks followed by a stable sort,
in integer arithmetic only: the same on every machine and every numpy version, unlike
``Generator.permutation`` whose stream numpy may change.

Prefetch: a producer thread slices the ordered table into batches (zero-copy Arrow slices),
converts each to the consumer's form (numpy columns by default, torch tensors on request), and
hands them over through a buffer bounded both in batches and in bytes. The consumer never does
per-row Python work; the producer does none either: every step is a columnar Arrow or numpy call.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from system0.errors import Closed, ValidationError

T = TypeVar("T")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser over an array (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


def permutation(n: int, seed: int) -> npt.NDArray[np.int64]:
    """A permutation of ``range(n)`` fixed by ``seed`` alone."""
    if not 0 <= seed < 2**64:
        raise ValidationError(f"seed must be an integer in [0, 2**64), not {seed}")
    with np.errstate(over="ignore"):
        keys = splitmix64(np.arange(n, dtype=np.uint64) ^ splitmix64(np.array([seed], np.uint64)))
    perm: npt.NDArray[np.int64] = np.argsort(keys, kind="stable").astype(np.int64)
    return perm


def column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A column by dotted path (``metadata.step``); ``ValidationError`` names what exists."""
    head, *rest = name.split(".")
    if head not in table.column_names:
        raise ValidationError(
            f"order key {name!r}: no column {head!r}; columns: {', '.join(table.column_names)}"
        )
    col = table.column(head)
    for part in rest:
        if not pa.types.is_struct(col.type) or col.type.get_field_index(part) < 0:
            raise ValidationError(f"order key {name!r}: {part!r} is not a field of {col.type}")
        col = pc.struct_field(col, part)
    return col


def ordered_indices(
    table: pa.Table, order_by: Sequence[str], seed: int | None
) -> npt.NDArray[np.int64]:
    """Row indices: stable sort by ``order_by``, then the seed's permutation if any."""
    if not order_by:
        raise ValidationError(
            "a deterministic read needs an explicit order key (order_by), e.g. "
            "('metadata.match_id', 'metadata.step')"
        )
    keys = pa.table({f"k{i}": column(table, k) for i, k in enumerate(order_by)})
    sort_keys = [(f"k{i}", "ascending") for i in range(len(order_by))]
    order: npt.NDArray[np.int64] = np.asarray(
        pc.sort_indices(keys, sort_keys=sort_keys).to_numpy(), dtype=np.int64
    )
    if seed is None:
        return order
    shuffled: npt.NDArray[np.int64] = order[permutation(len(order), seed)]
    return shuffled


def to_numpy(batch: pa.RecordBatch | pa.Table) -> dict[str, np.ndarray[Any, Any]]:
    """Fixed-width columns (structs flattened to dotted names) as numpy arrays, columnwise.

    Strings and lists are left out (they are not tensors); use the Arrow batch for those, or
    ``system0.data.serialization.features`` for the documented feature matrix.
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    out: dict[str, np.ndarray[Any, Any]] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            out[name] = col.to_numpy()
        elif pa.types.is_timestamp(t):
            out[name] = col.cast(pa.int64()).to_numpy()
    return out


def to_torch(batch: pa.RecordBatch | pa.Table) -> dict[str, Any]:
    """Like ``to_numpy``, as torch tensors sharing the numpy memory (no copy)."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in to_numpy(batch).items()}


def torch_dataset(make_batches: Callable[[], Iterator[Any]]) -> Any:
    """A ``torch.utils.data.IterableDataset`` over already-batched items, for a DataLoader
    built with ``batch_size=None`` (the batches are made here, not by the loader), e.g.
    ``DataLoader(torch_dataset(lambda: reader.prefetch(to_torch)), batch_size=None)``."""
    from torch.utils.data import IterableDataset

    class _Batches(IterableDataset):  # type: ignore[misc, type-arg, unused-ignore]
        def __iter__(self) -> Iterator[Any]:
            return make_batches()

    return _Batches()


class Prefetcher(Generic[T]):
    """Iterate converted batches produced ahead in a thread, within a memory bound.

    At most ``max_batches`` batches, and at most ``max_bytes`` of Arrow data, wait in the
    buffer (one batch larger than ``max_bytes`` is still let through alone). The producer blocks
    when the buffer is full; an error in the producer is raised in the consumer.
    """

    def __init__(
        self,
        batches: Iterator[pa.RecordBatch],
        convert: Callable[[pa.RecordBatch], T],
        *,
        max_batches: int = 4,
        max_bytes: int = 256 << 20,
    ) -> None:
        if max_batches < 1 or max_bytes < 1:
            raise ValidationError("prefetch bounds must be >= 1 batch and >= 1 byte")
        self._source = batches
        self._convert = convert
        self._max_batches = max_batches
        self._max_bytes = max_bytes
        self._buf: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._done = False
        self._closed = False
        self._error: BaseException | None = None
        self._cv = threading.Condition()
        self.peak_bytes = 0
        self.peak_batches = 0
        self._thread = threading.Thread(target=self._run, name="system0-prefetch", daemon=True)
        self._thread.start()

    def _has_room(self, size: int) -> bool:
        if self._closed or not self._buf:
            return True
        return len(self._buf) < self._max_batches and self._bytes + size <= self._max_bytes

    def _run(self) -> None:
        try:
            for batch in self._source:
                size = batch.nbytes
                item = self._convert(batch)
                with self._cv:
                    self._cv.wait_for(functools.partial(self._has_room, size))
                    if self._closed:
                        return
                    self._buf.append((item, size))
                    self._bytes += size
                    self.peak_bytes = max(self.peak_bytes, self._bytes)
                    self.peak_batches = max(self.peak_batches, len(self._buf))
                    self._cv.notify_all()
        except BaseException as e:  # handed to the consumer, which re-raises it
            with self._cv:
                self._error = e
        finally:
            with self._cv:
                self._done = True
                self._cv.notify_all()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        with self._cv:
            self._cv.wait_for(lambda: bool(self._buf) or self._done or self._closed)
            if self._closed:
                raise Closed("this prefetcher was closed; open a new reader to read again")
            if self._buf:
                item, size = self._buf.popleft()
                self._bytes -= size
                self._cv.notify_all()
                return item
            if self._error is not None:
                raise self._error
            raise StopIteration

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._buf.clear()
            self._cv.notify_all()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Prefetcher",
    "column",
    "ordered_indices",
    "permutation",
    "to_numpy",
    "to_torch",
    "torch_dataset",
]
