"""Segments as Parquet bytes that read back *equal* to the Arrow table that was written.

Parquet keeps values, not Arrow's physical layout. Two details of that layout matter here:

* list fields keep Arrow's child name (``item``) rather than Parquet's ``element``;
* dictionary arrays come back with the dictionary re-built in order of first appearance. The
  codec's inventory is ``dictionary<uint16, utf8>`` over the whole item vocabulary, and its key
  *is* the item's vocabulary index (the feature column). A re-ordered dictionary would keep the
  strings but silently change every key, so each segment records its dictionaries (per column
  path, in the Parquet footer's metadata) and decoding maps the keys back onto them.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_DICTS_KEY = b"system0.storage.dictionaries"


def _string_leaves(field: pa.Field, prefix: str = "") -> list[str]:
    """Parquet column paths of string leaves (the only ones worth dictionary-encoding)."""
    path = f"{prefix}{field.name}"
    t = field.type
    if pa.types.is_struct(t):
        return [p for child in t for p in _string_leaves(child, path + ".")]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _string_leaves(t.value_field, path + ".list.")
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return [path]
    return []


def _has_dictionary(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_dictionary(f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_dictionary(t.value_type)
    return False


def _collect(arr: pa.Array, path: str, out: dict[str, Any]) -> None:
    """Record each dictionary leaf's values; a path whose chunks disagree records None."""
    t = arr.type
    if pa.types.is_dictionary(t):
        values = arr.dictionary.to_pylist()
        if out.setdefault(path, values) != values:
            out[path] = None
    elif pa.types.is_struct(t):
        for i, f in enumerate(t):
            _collect(arr.field(i), f"{path}.{f.name}", out)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        _collect(arr.values, f"{path}.[]", out)


def _restore(arr: pa.Array, path: str, dicts: dict[str, Any]) -> pa.Array:
    t = arr.type
    mask = arr.is_null() if arr.null_count else None
    if pa.types.is_dictionary(t):
        wanted = dicts.get(path)
        if wanted is None:
            return arr
        original = pa.array(wanted, t.value_type)
        remap = pc.index_in(arr.dictionary, value_set=original).cast(t.index_type)
        keys = pc.take(remap, arr.indices)
        return pa.DictionaryArray.from_arrays(keys, original, mask=mask)
    if pa.types.is_struct(t):
        children = [_restore(arr.field(i), f"{path}.{f.name}", dicts) for i, f in enumerate(t)]
        return pa.StructArray.from_arrays(children, fields=list(t), mask=mask)
    if pa.types.is_list(t):
        values = _restore(arr.values, f"{path}.[]", dicts)
        return pa.ListArray.from_arrays(arr.offsets, values, type=t, mask=mask)
    return arr


def encode_segment(table: pa.Table, *, compression: str = "lz4") -> bytes:
    """Parquet bytes of ``table``; one row group per segment keeps slicing and reads cheap.

    Dictionary encoding only for string columns: on measured floats (positions, health) it
    costs 3x the whole write for no gain. LZ4 rather than zstd: the write path is gated on
    speed, and segments are re-read many times per run, where decode speed matters more.
    """
    strings = [p for f in table.schema for p in _string_leaves(f)]
    dicts: dict[str, Any] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if _has_dictionary(col.type):
            for chunk in col.chunks:
                _collect(chunk, name, dicts)
    if dicts:
        meta = dict(table.schema.metadata or {})
        meta[_DICTS_KEY] = json.dumps(dicts, separators=(",", ":")).encode()
        table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=compression,
        use_dictionary=strings or False,
        row_group_size=max(1, table.num_rows),
        write_statistics=False,
        store_schema=True,
        # keep Arrow's list child names ("item"), so the table reads back equal
        use_compliant_nested_type=False,
    )
    data: bytes = sink.getvalue().to_pybytes()
    return data


def decode_segment(data: bytes | memoryview, columns: list[str] | None = None) -> pa.Table:
    """The table ``encode_segment`` was given (or the named columns of it)."""
    table: pa.Table = pq.read_table(pa.BufferReader(data), columns=columns)
    meta = dict(table.schema.metadata or {})
    raw = meta.pop(_DICTS_KEY, None)
    if raw is None:
        return table
    dicts = json.loads(raw)
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        if _has_dictionary(col.type):
            col = pa.chunked_array([_restore(c, name, dicts) for c in col.chunks], col.type)
        cols.append(col)
    schema = table.schema.with_metadata(meta) if meta else table.schema.remove_metadata()
    return pa.Table.from_arrays(cols, schema=schema)


__all__ = ["decode_segment", "encode_segment"]
