"""Segments read back equal to what was written: schema, metadata, nulls, and the physical
dictionaries whose keys carry meaning (the codec's item vocabulary indices)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from system0.data.storage.parquet import decode_segment, encode_segment
from system0.data.storage.schema import synthetic_samples


def test_training_samples_round_trip_exactly() -> None:
    t = synthetic_samples(500)
    back = decode_segment(encode_segment(t))
    assert back.schema.equals(t.schema, check_metadata=True)
    assert back.equals(t)


def test_dictionary_keys_keep_their_meaning() -> None:
    vocabulary = pa.array(["zeal", "boots", "amulet", "sword"])  # not in appearance order
    keys = pa.array([3, 1, 3, 0], pa.uint16())
    items = pa.DictionaryArray.from_arrays(keys, vocabulary)
    t = pa.table({"inv": pa.ListArray.from_arrays(pa.array([0, 2, 4]), items)})
    back = decode_segment(encode_segment(t))
    got = back.column("inv").chunk(0).values
    assert got.dictionary.equals(vocabulary)
    assert got.indices.to_pylist() == [3, 1, 3, 0]


def test_null_structs_and_sliced_input_round_trip() -> None:
    t = synthetic_samples(300)
    ns = t.column("next_state").chunk(0)
    mask = pa.array([i % 4 == 0 for i in range(len(t))])
    children = [ns.field(i) for i in range(ns.type.num_fields)]
    ns = pa.StructArray.from_arrays(children, fields=list(ns.type), mask=mask)
    t = t.set_column(3, t.schema.field("next_state"), ns).slice(7, 200)
    back = decode_segment(encode_segment(t))
    assert back.equals(t)
    assert back.column("next_state").null_count == t.column("next_state").null_count


def test_projection_reads_only_the_named_columns() -> None:
    t = synthetic_samples(50)
    back = decode_segment(encode_segment(t), columns=["reward", "state"])
    assert back.column_names == ["reward", "state"]
    assert back.column("state").equals(t.column("state"))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=4)),
        min_size=1,
        max_size=50,
    ),
    st.permutations(["a", "b", "c", "d"]),
)
def test_any_list_of_dictionary_values_round_trips(rows: list, vocab: list) -> None:
    index = {v: i for i, v in enumerate(vocab)}
    flat = [index[v] for r in rows if r is not None for v in r]
    offsets, n = [0], 0
    for r in rows:
        n += len(r or [])
        offsets.append(n)
    values = pa.DictionaryArray.from_arrays(pa.array(flat, pa.int8()), pa.array(vocab))
    mask = pa.array([r is None for r in rows])
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=mask)
    t = pa.table({"x": lists})
    assert decode_segment(encode_segment(t)).equals(t)
