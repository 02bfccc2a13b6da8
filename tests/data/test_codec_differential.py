"""Differential test: the Rust codec accepts exactly what the pydantic contract accepts and
yields equal values (thousands of generated valid and invalid rows per run)."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticError

from system0.data.contract import RANGES
from system0.data.models import ITEM_VOCABULARY, GameState, TrainingSample
from system0.data.serialization import decode_game_states, decode_training_samples

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
any_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -0.0, 1e308, 1e-320, 2**63, 2**64, -(2**63) - 1, 10**40, -(10**40)]),
)
unit = st.one_of(
    st.floats(0, 1),
    st.sampled_from([0, 1, -0.0, 1.0000000000000002, -5e-324, 2, 0.5]),
    any_number,
    junk,
)
finite = st.one_of(st.floats(-1e7, 1e7), st.integers(-(10**7), 10**7), any_number, junk)


def near_bounds(path: str) -> st.SearchStrategy[Any]:
    """Values of a bounded leaf: inside, at and one ulp around each bound, and anything."""
    lo, hi = RANGES[path]
    edges = [lo, hi, int(hi) + 1, int(lo) - 1, -0.0, -1e-9]
    edges += [math.nextafter(b, d) for b in (lo, hi) for d in (-math.inf, math.inf)]
    return st.one_of(
        st.floats(lo, hi),
        st.integers(math.ceil(lo), math.floor(hi)),
        st.sampled_from(edges),
        st.floats(lo - abs(lo) - 10, hi * 10 + 10),
        any_number,
        junk,
    )


def in_range(path: str) -> st.SearchStrategy[float]:
    lo, hi = RANGES[path]
    return st.floats(lo, hi)


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    y = draw(st.sampled_from([0, 1, 1999, 2000, 2024, 2099, 2100, 9999]) | st.integers(0, 9999))
    mo = draw(st.integers(0, 13))
    d = draw(st.integers(0, 32))
    h, mi, s = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    frac = draw(st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".25"]))
    sep = draw(st.sampled_from(["T", "T", "T", " ", "t"]))
    tz = draw(
        st.sampled_from(
            ["Z", "Z", "+00:00", "+23:59", "-23:59", "+24:00", "+05:30", "-00:00", "", "z", "+0530"]
        )
    )
    ts = f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{tz}"
    return draw(st.sampled_from([ts, ts, ts, ts + "\n", " " + ts])) if draw(st.booleans()) else ts


@st.composite
def valid_timestamps(draw: st.DrawFn) -> str:
    y = draw(st.integers(2000, 2099))
    mo = draw(st.integers(1, 12))
    d = draw(st.integers(1, 28))
    frac = draw(st.sampled_from(["", ".5", ".123456", ".001"]))
    tz = draw(st.sampled_from(["Z", "+02:00", "-07:30"]))
    h, mi = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00{frac}{tz}"


champions = st.one_of(
    st.text(alphabet="AbZz09 '._-", min_size=1, max_size=32),
    st.text(alphabet="AbZz09 '._-", min_size=0, max_size=34),
    st.text(max_size=4),
    junk,
)
items = st.sampled_from([*ITEM_VOCABULARY, "excalibur", "", "Boots"])
inventories = st.one_of(
    st.lists(st.sampled_from(ITEM_VOCABULARY), max_size=6),
    st.lists(items, max_size=8),
    st.lists(st.one_of(items, st.integers()), max_size=3),
    junk,
)


def position(coord: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({"x": coord, "y": coord})


def valid_state() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "timestamp": valid_timestamps(),
            "champion": st.text(alphabet="AbZz09 '._-", min_size=1, max_size=32),
            "position": position(st.floats(0, 1)),
            "health": in_range("health"),
            "mana": st.integers(0, 5000),
            "cooldowns": st.fixed_dictionaries({s: in_range(f"cooldowns.{s}") for s in "qwerdf"}),
            "inventory": st.lists(st.sampled_from(ITEM_VOCABULARY), max_size=6),
            "vision_score": in_range("vision_score"),
            "gold_advantage": in_range("gold_advantage"),
        }
    )


def any_state() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "timestamp": st.one_of(timestamps(), valid_timestamps(), junk),
            "champion": champions,
            "position": st.one_of(position(unit), junk),
            "health": near_bounds("health"),
            "mana": near_bounds("mana"),
            "cooldowns": st.one_of(
                st.fixed_dictionaries({s: near_bounds(f"cooldowns.{s}") for s in "qwerdf"}), junk
            ),
            "inventory": inventories,
            "vision_score": near_bounds("vision_score"),
            "gold_advantage": near_bounds("gold_advantage"),
        },
        optional={"schema_version": st.sampled_from([1, 1.0, 2, True, "1", None, 0])},
    )


FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "timestamp": st.one_of(timestamps(), junk),
    "champion": champions,
    "position": st.one_of(position(unit), junk),
    "health": near_bounds("health"),
    "mana": near_bounds("mana"),
    "cooldowns": st.fixed_dictionaries({s: near_bounds(f"cooldowns.{s}") for s in "qwerdf"}),
    "inventory": inventories,
    "vision_score": near_bounds("vision_score"),
    "gold_advantage": near_bounds("gold_advantage"),
    "schema_version": st.sampled_from([1, 1.0, 2, True, "1", None, 0]),
    "reward": finite,
}


@st.composite
def mutate(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """Drop a field, add an extra one, nest a mutation, or replace the row outright."""
    row: Any = dict(base)
    op = draw(st.integers(0, 11))
    if op == 11:
        row["schema_version"] = draw(FIELD_VALUES["schema_version"])
    if op == 0 and row:
        row.pop(draw(st.sampled_from(sorted(row))))
    elif op == 1:
        row[draw(st.sampled_from(["extra", "Health", "position_x", ""]))] = 1
    elif op == 2 and isinstance(row.get("position"), dict):
        row["position"] = {**row["position"], "z": 0.5}
    elif op == 3 and isinstance(row.get("cooldowns"), dict) and row["cooldowns"]:
        cds = dict(row["cooldowns"])
        cds.pop(draw(st.sampled_from(sorted(cds))))
        row["cooldowns"] = cds
    elif op == 4:
        row = draw(junk)
    elif op == 7 and isinstance(row.get("state"), dict):
        row["state"] = draw(mutate(row["state"]))
    elif op in (5, 6) and row:
        # one field of an otherwise valid row takes an arbitrary value: the sharpest probe
        key = draw(st.sampled_from(sorted(row)))
        row[key] = draw(FIELD_VALUES.get(key, junk))
    return row


def encode(row: Any, draw: st.DrawFn) -> bytes:
    text = json.dumps(row)  # NaN / Infinity become the non-standard literals on purpose
    if draw(st.integers(0, 30)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # truncated document
    if draw(st.integers(0, 30)) == 0 and text.startswith("{") and len(text) > 2:
        text = '{"health": -1, ' + text[1:]  # duplicate key: the last one must win on both sides
    return text.encode()


@st.composite
def game_state_rows(draw: st.DrawFn) -> list[bytes]:
    n = draw(st.integers(1, 40))
    out = []
    for _ in range(n):
        base = draw(st.one_of(valid_state(), valid_state(), any_state()))
        out.append(encode(draw(mutate(base)), draw))
    return out


def flat(gs: GameState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timestamp": gs.timestamp,
        "champion": gs.champion,
        "position_x": gs.position.x,
        "position_y": gs.position.y,
        "health": gs.health,
        "mana": gs.mana,
    }
    for slot in "qwerdf":
        out[f"cooldown_{slot}"] = getattr(gs.cooldowns, slot)
    out["inventory"] = list(gs.inventory)
    out["vision_score"] = gs.vision_score
    out["gold_advantage"] = gs.gold_advantage
    return out


def pydantic_verdicts(rows: list[bytes], model: Any) -> list[Any]:
    out = []
    for raw in rows:
        try:
            out.append(model.model_validate_json(raw))
        except PydanticError:
            out.append(None)
    return out


def same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k, v in a.items():
        w = b[k]
        if isinstance(v, datetime):
            if v != w or v.utcoffset() is None:
                return False
        elif v != w:
            return False
    return True


SETTINGS = settings(
    max_examples=int(os.environ.get("S0_DIFF_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(game_state_rows())
def test_rust_and_pydantic_agree_on_game_states(rows: list[bytes]) -> None:
    expected = pydantic_verdicts(rows, GameState)
    decoded = decode_game_states(rows)
    assert decoded.total == len(rows)
    accepted = dict(zip(decoded.rows, pa.record_batch(decoded).to_pylist(), strict=True))
    refused = {r for r, _raw, _codes in decoded.rejected}
    for i, (raw, model) in enumerate(zip(rows, expected, strict=True)):
        if model is None:
            assert i in refused, f"Rust accepted a row pydantic refuses: {raw!r}"
        else:
            assert i in accepted, f"Rust refused a row pydantic accepts: {raw!r} {decoded.errors}"
            assert same_values(flat(model), accepted[i]), raw
    # the same rows as one JSON array (fast whole-document path, chunk and row fallbacks)
    # give the same verdicts, as long as every row is balanced JSON on its own
    if all(_balanced(r) for r in rows):
        as_array = decode_game_states(b"[" + b",".join(rows) + b"]")
        assert as_array.rows == decoded.rows
        assert pa.record_batch(as_array).equals(pa.record_batch(decoded))


def _balanced(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


actions = st.one_of(
    st.fixed_dictionaries({"kind": st.sampled_from(["move", "attack"]), "target": position(unit)}),
    st.fixed_dictionaries(
        {"kind": st.just("cast"), "slot": st.sampled_from([*"qwerdf", "x", 1])},
        optional={"target": st.one_of(st.none(), position(unit))},
    ),
    st.fixed_dictionaries({"kind": st.just("buy"), "item": items}),
    st.fixed_dictionaries({"kind": st.sampled_from(["recall", "idle", "dance", 3])}),
    st.fixed_dictionaries({"slot": st.just("q")}),
    junk,
)
metadata = st.fixed_dictionaries(
    {
        "match_id": st.one_of(st.text(min_size=0, max_size=66), junk),
        "step": st.one_of(st.integers(-2, 2**31 + 1), st.sampled_from([1.0, 2**40, -0, 3.5]), junk),
        "source": st.one_of(st.text(min_size=1, max_size=8), junk),
    }
)


@st.composite
def sample_rows(draw: st.DrawFn) -> list[bytes]:
    out = []
    for _ in range(draw(st.integers(1, 15))):
        state = draw(st.one_of(valid_state(), valid_state(), any_state()))
        row = {
            "state": state,
            "action": draw(actions),
            "reward": draw(st.one_of(st.floats(-10, 10), finite)),
            "next_state": draw(st.one_of(st.none(), valid_state(), any_state())),
            "metadata": draw(metadata),
        }
        out.append(encode(draw(mutate(row)), draw))
    return out


def flat_sample(s: TrainingSample) -> dict[str, Any]:
    a = s.action
    target = getattr(a, "target", None)
    return {
        "state": flat(s.state),
        "action": {
            "kind": a.kind,
            "slot": getattr(a, "slot", None),
            "target_x": target.x if target else None,
            "target_y": target.y if target else None,
            "item": getattr(a, "item", None),
        },
        "reward": s.reward,
        "next_state": flat(s.next_state) if s.next_state else None,
        "metadata": s.metadata.model_dump(),
    }


@SETTINGS
@given(sample_rows())
def test_rust_and_pydantic_agree_on_training_samples(rows: list[bytes]) -> None:
    expected = pydantic_verdicts(rows, TrainingSample)
    decoded = decode_training_samples(rows)
    accepted = dict(zip(decoded.rows, pa.record_batch(decoded).to_pylist(), strict=True))
    for raw, (i, model) in zip(rows, enumerate(expected), strict=True):
        if model is None:
            assert i not in accepted, f"Rust accepted a row pydantic refuses: {raw!r}"
        else:
            assert i in accepted, f"Rust refused a row pydantic accepts: {raw!r} {decoded.errors}"
            want, got = flat_sample(model), accepted[i]
            assert same_values(want["state"], got["state"])
            assert want["action"] == got["action"]
            assert want["reward"] == got["reward"]
            assert want["metadata"] == got["metadata"]
            if want["next_state"] is None:
                assert got["next_state"] is None
            else:
                assert same_values(want["next_state"], got["next_state"])


def _edge(old: str, new: str) -> bytes:
    return json.dumps(_BASE).replace(old, new, 1).encode()


_BASE = {
    "timestamp": "2024-05-01T12:00:00.250Z",
    "champion": "Ahri",
    "position": {"x": 0.5, "y": 0.25},
    "health": 530.0,
    "mana": 300.5,
    "cooldowns": {"q": 0, "w": 1.5, "e": 0, "r": 80, "d": 0, "f": 300},
    "inventory": ["boots"],
    "vision_score": 12,
    "gold_advantage": -350.0,
}
EDGES = [
    _edge("530.0", "5.3E2"),
    _edge("530.0", "-0"),
    _edge("530.0", "1e400"),
    _edge("530.0", "1" + "0" * 40),  # integer beyond 64 bits
    _edge("530.0", "-1" + "0" * 40),
    _edge("530.0", "-9223372036854775809"),  # below i64::MIN, within a u64 (found by hypothesis)
    _edge("530.0", "-18446744073709551615"),
    _edge('"gold_advantage": -350.0', '"gold_advantage": -9223372036854775809'),
    _edge('"Ahri"', '"\\u0041hri"'),
    _edge('"Ahri"', '"Ahri\\u0000"'),
    _edge('"Ahri"', '"\\ud800"'),  # lone surrogate
    _edge("12:00:00.250Z", "12:00:00,250Z"),
    _edge("12:00:00.250Z", "12:00:00.250\\u005a"),
    _edge("2024-05-01T12:00:00.250Z", "2099-12-31T23:59:59.999999Z"),
    _edge("2024-05-01T12:00:00.250Z", "2000-01-01T00:00:00+00:01"),
    _edge("2024-05-01T12:00:00.250Z", "2024-05-01T12:00:60Z"),
    _edge("{", '{"schema_version": 1.0, '),
    _edge("{", '{"schema_version": true, '),
    _edge("{", '{"schema_version": 1, '),
    _edge("12,", "Infinity,"),
    _edge('"x": 0.5', '"x": 1.00000000000000001'),
    _edge('"x": 0.5', '"x": -0.0'),
    _edge('"x": 0.5', '"x": 0.5, "x": 7'),  # duplicate key: last wins on both sides
    _edge('"x": 0.5', '"x": 7, "x": 0.5'),
    _edge("530.0", "100000"),  # the contract's bounds are closed
    _edge("530.0", "100000.00000000001"),  # rounds to the bound on both sides
    _edge("530.0", "100000.0000000001"),
    _edge("530.0", "1e300"),
    _edge('"f": 300', '"f": 3600.0'),
    _edge('"f": 300', '"f": 3600.0000000005'),
    _edge('"gold_advantage": -350.0', '"gold_advantage": -1000000'),
    _edge('"gold_advantage": -350.0', '"gold_advantage": -1000000.0000001'),
    _edge('"vision_score": 12', '"vision_score": 10001'),
    b"\xef\xbb\xbf" + json.dumps(_BASE).encode(),  # BOM
    json.dumps(_BASE).encode() + b" \n",
]


@pytest.mark.parametrize("raw", EDGES)
def test_known_edge_cases_agree(raw: bytes) -> None:
    try:
        GameState.model_validate_json(raw)
        accepted = True
    except PydanticError:
        accepted = False
    assert (decode_game_states([raw]).num_rows == 1) == accepted, raw
