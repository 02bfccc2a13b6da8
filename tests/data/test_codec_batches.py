"""The Rust codec on whole batches: input forms, bad rows isolated with reason codes and raw
bytes, Arrow export without copies, encode back, IPC / Parquet, checksummed files."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pyarrow as pa
import pytest
from conftest import dumps, game_state, sample

from system0 import _core
from system0.data.models import GameState
from system0.data.serialization import (
    decode_game_states,
    decode_training_samples,
    read_checksummed,
    read_ipc,
    read_parquet,
    to_json,
    to_protobuf,
    write_checksummed,
    write_ipc,
    write_parquet,
)
from system0.errors import IntegrityError


def test_json_array_ndjson_and_row_list_agree() -> None:
    rows = [game_state(health=float(i)) for i in range(5)]
    as_array = decode_game_states(dumps(rows))
    as_ndjson = decode_game_states(b"\n".join(json.dumps(r).encode() for r in rows) + b"\n")
    as_list = decode_game_states([json.dumps(r).encode() for r in rows])
    for d in (as_array, as_ndjson, as_list):
        assert d.num_rows == 5 and d.total == 5 and d.errors == []
        assert pa.record_batch(d).column("health").to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_one_bad_row_stays_in_its_row_with_codes_and_raw_bytes() -> None:
    bad = game_state(health=-1.0, position={"x": 2, "y": 0.5}, extra=True)
    data = dumps([game_state(), bad, game_state()])
    d = decode_game_states(data)
    assert d.rows == [0, 2]
    codes = {(p, c) for r, p, c, _m in d.errors if r == 1}
    assert codes == {
        ("health", "greater_than_equal"),
        ("position.x", "less_than_equal"),
        ("extra", "extra_forbidden"),
    }
    [(row, raw, row_codes)] = d.rejected
    assert row == 1 and json.loads(raw) == bad and "extra_forbidden" in row_codes


def test_malformed_json_is_isolated_to_its_element() -> None:
    good = json.dumps(game_state()).encode()
    data = b"[" + good + b', {"health": NaN}, {"broken": }, ' + good + b"]"
    d = decode_game_states(data)
    assert d.total == 4 and d.rows == [0, 3]
    assert {r for r, _p, c, _m in d.errors if c == "json_invalid"} == {1, 2}


def test_truncated_batch_keeps_the_rows_before_the_cut() -> None:
    good = json.dumps(game_state()).encode()
    data = b"[" + good + b"," + good[:40]
    d = decode_game_states(data)
    assert d.rows == [0] and d.rejected[0][1] == good[:40]


@pytest.mark.parametrize(
    "hostile",
    [
        b"[" * 100_000,
        b'{"champion": "' + b"A" * 5_000_000 + b'"}',
        b'{"inventory": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b"\xff\xfe\x00garbage",
        b"",
    ],
)
def test_hostile_input_never_raises(hostile: bytes) -> None:
    d = decode_game_states([hostile])
    assert d.num_rows == 0 and d.total == 1 and d.rejected


def test_huge_champion_is_refused_with_a_reason() -> None:
    d = decode_game_states(dumps([game_state(champion="A" * 10_000)]))
    assert [c for _r, _p, c, _m in d.errors] == ["champion_invalid"]


def test_values_equal_pydantic_and_timestamps_are_utc() -> None:
    row = game_state(timestamp="2024-05-01T14:00:00.5+02:00")
    d = decode_game_states(dumps([row]))
    got = pa.record_batch(d).to_pylist()[0]
    want = GameState.model_validate(row)
    assert got["timestamp"] == want.timestamp
    assert got["timestamp"].utcoffset().total_seconds() == 0
    assert got["inventory"] == want.inventory
    assert got["cooldown_r"] == want.cooldowns.r


def test_arrow_export_is_zero_copy_and_carries_the_contract() -> None:
    d = decode_game_states(dumps([game_state() for _ in range(100)]))
    rb = pa.record_batch(d)
    again = pa.record_batch(d)
    # both imports point at the same Rust-owned buffer: no copy was made
    assert rb.column("health").buffers()[1].address == again.column("health").buffers()[1].address
    assert rb.schema.metadata[b"system0.contract"] == b"GameState"
    assert pa.table(d).num_rows == 100  # __arrow_c_stream__
    assert pa.schema(d) == rb.schema  # __arrow_c_schema__


def test_encode_back_to_json_round_trips() -> None:
    rows = [game_state(health=float(i), inventory=[]) for i in range(3)]
    d = decode_game_states(dumps(rows))
    again = decode_game_states(to_json(d))
    assert pa.record_batch(again).equals(pa.record_batch(d))
    nd = decode_game_states(to_json(d, ndjson=True))
    assert pa.record_batch(nd).equals(pa.record_batch(d))
    for doc in to_json(d, ndjson=True).splitlines():
        GameState.model_validate_json(doc)  # the encoding satisfies the contract


def test_msgpack_decodes_like_json() -> None:
    rows = [game_state(), game_state(health=-5.0), game_state(mana=7)]
    d = decode_game_states(msgspec.msgpack.encode(rows), format="msgpack")
    j = decode_game_states(dumps(rows))
    assert d.rows == j.rows == [0, 2]
    assert pa.record_batch(d).equals(pa.record_batch(j))
    assert msgspec.msgpack.decode(d.rejected[0][1])["health"] == -5.0


def test_truncated_msgpack_reports_the_rest_as_one_row() -> None:
    data = msgspec.msgpack.encode([game_state(), game_state()])
    d = decode_game_states(data[:-20], format="msgpack")
    assert d.rows == [0] and [c for _r, _p, c, _m in d.errors] == ["msgpack_invalid"]


def test_training_samples_decode_into_nested_columns() -> None:
    rows = [
        sample(),
        sample(next_state=None, action={"kind": "recall"}),
        sample(action={"kind": "buy", "item": "boots"}),
        sample(reward=float("nan")),
        sample(action={"kind": "dance"}),
    ]
    d = decode_training_samples(json.dumps(rows).encode())
    assert d.rows == [0, 1, 2]
    table = pa.record_batch(d).to_pylist()
    assert table[1]["next_state"] is None and table[1]["action"]["kind"] == "recall"
    assert table[2]["action"]["item"] == "boots"
    assert table[0]["metadata"] == {"match_id": "EUW-1", "step": 7, "source": "replay"}
    codes = {(r, c) for r, _p, c, _m in d.errors}
    assert codes == {(3, "json_invalid"), (4, "union_tag_invalid")}


def test_ipc_and_parquet_round_trip(tmp_path: Path) -> None:
    d = decode_game_states(dumps([game_state(health=float(i)) for i in range(10)]))
    rb = pa.record_batch(d)
    write_ipc(d, str(tmp_path / "b.arrow"))
    assert read_ipc(str(tmp_path / "b.arrow")).to_batches()[0].equals(rb)
    write_parquet(d, str(tmp_path / "b.parquet"))
    t = read_parquet(str(tmp_path / "b.parquet"))
    assert t.schema.metadata[b"system0.contract"] == b"GameState"
    assert t.column("health").to_pylist() == rb.column("health").to_pylist()


def test_checksummed_file_detects_a_flipped_byte(tmp_path: Path) -> None:
    d = decode_game_states(dumps([game_state(health=float(i)) for i in range(50)]))
    path = tmp_path / "batch.s0b"
    crc = write_checksummed(d, path)
    assert crc == _core.crc32c(path.read_bytes()[16:])
    assert read_checksummed(path).num_rows == 50
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit, in the middle of the data
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="CRC-32C mismatch"):
        read_checksummed(path)
    path.write_bytes(bytes(raw[:100]))
    with pytest.raises(IntegrityError):
        read_checksummed(path)


def test_crc32c_matches_the_standard_check_value() -> None:
    assert _core.crc32c(b"123456789") == 0xE3069283  # RFC 3720 check value


def test_decoded_batches_carry_the_checksum_of_their_input() -> None:
    rows = [json.dumps(game_state(health=float(i))).encode() for i in range(3)]
    whole = b"".join(rows)
    assert decode_game_states(rows).input_crc32c == _core.crc32c(whole)
    data = dumps([game_state()])
    assert decode_game_states(data).input_crc32c == _core.crc32c(data)
    flipped = data.replace(b"Ahri", b"Ahrj")
    assert decode_game_states(flipped).input_crc32c != _core.crc32c(data)


def _pb_field(tag: int, wire: int, payload: bytes) -> bytes:
    key = bytes([(tag << 3) | wire])
    if wire == 2:
        return key + bytes([len(payload)]) + payload
    return key + payload


def test_protobuf_round_trip_and_bad_rows() -> None:
    import struct

    d = decode_game_states(dumps([game_state(health=float(i)) for i in range(3)]))
    wire = to_protobuf(d)
    back = decode_game_states(wire, format="protobuf")
    assert back.rows == [0, 1, 2]
    assert pa.record_batch(back).equals(pa.record_batch(d))
    # protobuf merges concatenated messages: append a batch holding one state whose health is
    # negative and which lacks every other field
    bad_state = _pb_field(5, 1, struct.pack("<d", -1.0))
    merged = decode_game_states(wire + _pb_field(1, 2, bad_state), format="protobuf")
    assert merged.rows == [0, 1, 2] and merged.total == 4
    codes = {c for _r, _p, c, _m in merged.errors}
    assert {"greater_than_equal", "missing"} <= codes
    assert merged.rejected[0][1] == bad_state
    garbage = decode_game_states(b"\xff\xff\xff", format="protobuf")
    assert garbage.num_rows == 0 and garbage.errors[0][2] == "protobuf_invalid"
    proto = Path(__file__).parents[2] / "python/system0/data/game_state.proto"
    assert "message GameStateBatch" in proto.read_text()
