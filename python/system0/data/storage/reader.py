"""Pinned, deterministic reads: the same batches from the same pin, on every run and machine.

A pin is (dataset, version id, order key, seed, batch size). The version id is the hash of a
manifest, so the rows are fixed; the order key and the seed fix their order (see
``storage.prefetch``); the batch size fixes the cut. ``digest()`` hashes the batches' Arrow IPC
bytes, which is what the cross-process determinism test compares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from system0.data.storage.prefetch import Prefetcher, ordered_indices, permutation, to_numpy
from system0.data.storage.versions import Version
from system0.errors import ValidationError

T = TypeVar("T")


@dataclass(frozen=True)
class Pin:
    dataset: str
    version: str
    order_by: tuple[str, ...]
    seed: int | None
    batch_size: int

    def describe(self) -> str:
        return (
            f"{self.dataset}@{self.version[:12]} order_by={','.join(self.order_by)} "
            f"seed={self.seed} batch_size={self.batch_size}"
        )


class PinnedReader:
    """Batches of one version in a fixed order. Rows are loaded once, on first use."""

    def __init__(
        self,
        pin: Pin,
        version: Version,
        load: Callable[[Version, list[str] | None], pa.Table],
        *,
        columns: Sequence[str] | None = None,
        prefetch_batches: int = 4,
        prefetch_max_bytes: int = 256 << 20,
        executor: Executor | None = None,
    ) -> None:
        if pin.batch_size < 1:
            raise ValidationError(f"batch_size must be >= 1, not {pin.batch_size}")
        self.pin = pin
        self.version = version
        self._load = load
        self._columns = list(columns) if columns is not None else None
        self._table: pa.Table | None = None
        # rows as loaded and their key order, shared by readers of other seeds (epochs)
        self._shared: dict[str, Any] = {}
        self._prefetch_batches = prefetch_batches
        self._prefetch_max_bytes = prefetch_max_bytes
        self._executor = executor

    @property
    def rows(self) -> int:
        return self.version.rows

    def __len__(self) -> int:
        return -(-self.rows // self.pin.batch_size)

    def table(self) -> pa.Table:
        """The whole version in pinned order, as one contiguous table (each column one chunk)."""
        if self._table is None:
            needed = self._columns
            if needed is not None:  # the order key's top-level columns must be read too
                needed = sorted(set(needed) | {k.split(".")[0] for k in self.pin.order_by})
            if "raw" not in self._shared:
                raw = self._load(self.version, needed).combine_chunks()
                self._shared["raw"] = raw
                self._shared["key_order"] = ordered_indices(raw, self.pin.order_by, None)
            raw = self._shared["raw"]
            order = self._shared["key_order"]
            if self.pin.seed is not None:
                order = order[permutation(len(order), self.pin.seed)]
            idx = pa.array(order, pa.int64())
            # one gather per column, in parallel: Arrow's take releases the GIL
            if self._executor is not None and raw.num_columns > 1:
                cols = list(self._executor.map(lambda c: c.take(idx), raw.columns))
            else:
                cols = [c.take(idx) for c in raw.columns]
            ordered = pa.Table.from_arrays(cols, schema=raw.schema)
            if self._columns is not None:
                ordered = ordered.select(self._columns)
            self._table = ordered.combine_chunks()
        return self._table

    def with_seed(self, seed: int | None) -> PinnedReader:
        """The same version and key under another seed (the next epoch), sharing the rows
        already loaded and verified, so only the shuffle and the gather are redone."""
        pin = Pin(self.pin.dataset, self.pin.version, self.pin.order_by, seed, self.pin.batch_size)
        other = PinnedReader(
            pin,
            self.version,
            self._load,
            columns=self._columns,
            prefetch_batches=self._prefetch_batches,
            prefetch_max_bytes=self._prefetch_max_bytes,
            executor=self._executor,
        )
        other._shared = self._shared
        return other

    def batch(self, i: int) -> pa.RecordBatch:
        if not 0 <= i < len(self):
            raise ValidationError(
                f"batch index {i} is outside [0, {len(self)}) for {self.pin.describe()}"
            )
        t = self.table().slice(i * self.pin.batch_size, self.pin.batch_size)
        return t.to_batches()[0] if t.num_rows else pa.RecordBatch.from_pylist([], t.schema)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        table = self.table()
        yield from table.to_batches(max_chunksize=self.pin.batch_size)

    def prefetch(
        self,
        convert: Callable[[pa.RecordBatch], T] | None = None,
        *,
        max_batches: int | None = None,
        max_bytes: int | None = None,
    ) -> Prefetcher[Any]:
        """Batches produced ahead in a thread (numpy columns by default), memory bounded."""
        return Prefetcher(
            iter(self),
            convert or _NumpySlices(self),
            max_batches=max_batches or self._prefetch_batches,
            max_bytes=max_bytes or self._prefetch_max_bytes,
        )

    def digest(self) -> str:
        """SHA-256 over the pin and every batch's Arrow IPC bytes, in order."""
        h = hashlib.sha256(self.pin.describe().encode())
        for b in self:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, b.schema) as w:
                w.write_batch(b)
            h.update(sink.getvalue())
        return h.hexdigest()


class _NumpySlices:
    """Numpy columns of each batch as views into one conversion of the whole ordered table:
    the struct flattening and the Arrow-to-numpy step run once, not once per batch."""

    def __init__(self, reader: PinnedReader) -> None:
        self._reader = reader
        self._cols: dict[str, np.ndarray[Any, Any]] | None = None
        self._start = 0

    def __call__(self, batch: pa.RecordBatch) -> dict[str, np.ndarray[Any, Any]]:
        if self._cols is None:  # first batch, in the producer thread
            self._cols = to_numpy(self._reader.table())
        s, n = self._start, batch.num_rows
        self._start += n
        return {k: v[s : s + n] for k, v in self._cols.items()}


def rows_per_batch(reader: PinnedReader) -> np.ndarray[Any, Any]:
    """Row counts of each batch (all ``batch_size`` except possibly the last)."""
    n, b = reader.rows, reader.pin.batch_size
    sizes = np.full(len(reader), b, dtype=np.int64)
    if n % b:
        sizes[-1] = n % b
    return sizes


__all__ = ["Pin", "PinnedReader", "rows_per_batch"]
