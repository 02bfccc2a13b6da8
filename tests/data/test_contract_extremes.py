"""Every admitted value is a finite feature (issue 12, deliverable 7).

A property test over the contract's extremes: each bounded leaf of ``contract.RANGES`` takes
values at and next to its bounds (one ulp in, one ulp out), huge ones (1e300, the largest
double, integers beyond 64 bits) and arbitrary ones. Through JSON, msgpack and protobuf the
codec must admit exactly the in-range rows, give each of them a finite feature row, and refuse
every other row with ``greater_than_equal:{path}`` / ``less_than_equal:{path}`` (the codes
pydantic gives too).
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from typing import Any

import msgspec
import numpy as np
import pytest
from conftest import game_state, sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticError

from system0.data import contract
from system0.data.models import GameState, TrainingSample
from system0.data.serialization import (
    SCALES,
    Format,
    decode_game_states,
    decode_training_samples,
    features,
)

BIG = sys.float_info.max


def _scale(path: str) -> float:
    """The feature scale of a bounded leaf (``serialization`` module docs)."""
    if path.startswith("position."):
        return 1.0
    return SCALES["cooldown" if path.startswith("cooldowns.") else path]


# the largest feature a bounded leaf can reach: |bound| / scale
FEATURE_BOUND = max(abs(v) / _scale(p) for p, r in contract.RANGES.items() for v in r)


def extremes(lo: float, hi: float) -> st.SearchStrategy[float | int]:
    """Values at, one ulp inside and one ulp outside each bound, huge and arbitrary ones."""
    edges: list[float | int] = [
        lo,
        hi,
        math.nextafter(lo, -math.inf),
        math.nextafter(lo, math.inf),
        math.nextafter(hi, -math.inf),
        math.nextafter(hi, math.inf),
        int(lo),
        int(hi),
        int(lo) - 1,
        int(hi) + 1,
        -0.0,
        5e-324,
        -5e-324,
        1e300,
        -1e300,
        BIG,
        -BIG,
        10**30,
        -(10**30),
    ]
    return st.one_of(
        st.sampled_from(edges),
        st.floats(lo, hi),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(10**20), 10**20),
    )


def verdict(path: str, value: float | int) -> set[str]:
    """The reasons the contract gives for ``value`` at ``path`` (empty: admitted)."""
    lo, hi = contract.RANGES[path]
    if value < lo:
        return {f"greater_than_equal:{path}"}
    if value > hi:
        return {f"less_than_equal:{path}"}
    return set()


@st.composite
def extreme_states(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A valid GameState with 1-4 bounded leaves set to extremes, and the expected reasons."""
    paths = draw(st.lists(st.sampled_from(sorted(contract.RANGES)), min_size=1, max_size=4))
    row = json.loads(json.dumps(game_state()))
    expected: set[str] = set()
    for path in dict.fromkeys(paths):
        lo, hi = contract.RANGES[path]
        value = draw(extremes(lo, hi))
        head, _, leaf = path.partition(".")
        if leaf:
            row[head][leaf] = value
        else:
            row[head] = value
        expected |= verdict(path, value)
    return row, expected


def reasons(decoded: Any, row: int) -> set[str]:
    return {f"{code}:{path}" for r, path, code, _m in decoded.errors if r == row}


def pydantic_reasons(model: Any, raw: bytes) -> set[str]:
    try:
        model.model_validate_json(raw)
    except PydanticError as exc:
        return {f"{e['type']}:{'.'.join(map(str, e['loc']))}" for e in exc.errors()}
    return set()


def _pb(number: int, wire: int, payload: bytes) -> bytes:
    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            b, v = v & 0x7F, v >> 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    key = varint(number << 3 | wire)
    return key + (varint(len(payload)) + payload if wire == 2 else payload)


def to_protobuf(row: dict[str, Any]) -> bytes:
    """``row`` as a GameStateBatch message; field numbers are the contract's field order (the
    drift test holds the .proto to that)."""
    number = {f: i + 1 for i, f in enumerate(contract.GAME_STATE_FIELDS)}

    def double(n: int, v: float) -> bytes:
        return _pb(n, 1, struct.pack("<d", float(v)))

    msg = b""
    for field, value in row.items():
        n = number[field]
        if isinstance(value, dict):
            names = contract.POSITION_FIELDS if field == "position" else contract.ABILITY_SLOTS
            body = b"".join(double(names.index(k) + 1, v) for k, v in value.items())
            msg += _pb(n, 2, body)
        elif isinstance(value, list):
            msg += b"".join(_pb(n, 2, item.encode()) for item in value)
        elif isinstance(value, str):
            msg += _pb(n, 2, value.encode())
        else:
            msg += double(n, value)
    return _pb(1, 2, msg)


def _fits_msgpack(row: dict[str, Any]) -> bool:
    leaves = [v for v in row.values() if isinstance(v, int | float)]
    leaves += [v for d in row.values() if isinstance(d, dict) for v in d.values()]
    return all(-(2**63) <= v < 2**64 for v in leaves if isinstance(v, int))


def assert_finite_features(decoded: Any) -> None:
    f = features(decoded)
    assert np.isfinite(f).all(), f
    assert float(np.abs(f).max(initial=0.0)) <= FEATURE_BOUND


SETTINGS = settings(
    max_examples=int(os.environ.get("S0_DIFF_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(extreme_states())
def test_every_admitted_extreme_is_a_finite_feature(case: tuple[dict[str, Any], set[str]]) -> None:
    row, expected = case
    raw = json.dumps(row).encode()
    assert pydantic_reasons(GameState, raw) == expected, raw
    # protobuf carries doubles: an integer arrives as the nearest double, on the same side of
    # every bound (the bounds are far below 2**53)
    forms: list[tuple[Format, bytes]] = [
        ("json", b"[" + raw + b"]"),
        ("protobuf", to_protobuf(row)),
    ]
    if _fits_msgpack(row):
        forms.append(("msgpack", msgspec.msgpack.encode([row])))
    for fmt, data in forms:
        decoded = decode_game_states(data, format=fmt)
        assert reasons(decoded, 0) == expected, (fmt, raw, decoded.errors)
        assert decoded.num_rows == (0 if expected else 1), (fmt, raw)
        assert_finite_features(decoded)


@st.composite
def extreme_samples(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A TrainingSample whose state, next state or action target holds extremes."""
    state, s_expected = draw(extreme_states())
    nxt, n_expected = draw(extreme_states())
    lo, hi = contract.RANGES["position.x"]
    tx = draw(extremes(lo, hi))
    row = sample(state=state, next_state=nxt)
    row["action"] = {"kind": "move", "target": {"x": tx, "y": 0.5}}
    expected = {f"{r.split(':')[0]}:state.{r.split(':')[1]}" for r in s_expected}
    expected |= {f"{r.split(':')[0]}:next_state.{r.split(':')[1]}" for r in n_expected}
    expected |= {r.replace("position.x", "action.target.x") for r in verdict("position.x", tx)}
    return row, expected


@SETTINGS
@given(extreme_samples())
def test_training_samples_bound_state_next_state_and_target(
    case: tuple[dict[str, Any], set[str]],
) -> None:
    row, expected = case
    raw = json.dumps(row).encode()
    # pydantic names the union member in its location: action.move.target.x
    got = {r.replace("action.move.", "action.") for r in pydantic_reasons(TrainingSample, raw)}
    assert got == expected, raw
    decoded = decode_training_samples([raw])
    assert reasons(decoded, 0) == expected, (raw, decoded.errors)
    assert decoded.num_rows == (0 if expected else 1)
    assert_finite_features(decoded)


@pytest.mark.parametrize("side", [0, 1])
def test_a_state_with_every_leaf_at_one_bound_is_admitted_and_finite(side: int) -> None:
    row = json.loads(json.dumps(game_state()))
    for path, bounds in contract.RANGES.items():
        head, _, leaf = path.partition(".")
        if leaf:
            row[head][leaf] = bounds[side]
        else:
            row[head] = bounds[side]
    decoded = decode_game_states([json.dumps(row).encode()])
    assert decoded.errors == []
    f = features(decoded)
    assert np.isfinite(f).all()
    # the dense columns are the documented value / scale, at the largest values admitted
    dense = dict(zip(contract.FEATURE_NAMES[:12], f[0, :12].tolist(), strict=True))
    assert dense["gold_advantage"] == pytest.approx(contract.RANGES["gold_advantage"][side] / 1e4)
    assert dense["health"] == pytest.approx(contract.RANGES["health"][side] / 5000)


def test_the_issues_overflowing_values_are_refused_with_their_paths() -> None:
    rows = [game_state(health=1e300), game_state(gold_advantage=-1e300)]
    decoded = decode_game_states([json.dumps(r).encode() for r in rows])
    assert decoded.num_rows == 0
    assert [f"{c}:{p}" for _r, p, c, _m in decoded.errors] == [
        "less_than_equal:health",
        "greater_than_equal:gold_advantage",
    ]
    assert "100000" in decoded.errors[0][3]  # the message names the range
