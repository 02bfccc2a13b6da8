"""featurize_requests: every request form meets the codec's rules and gives the codec's rows."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import numpy as np
import pytest
from conftest import game_state

from system0.data.models import GameState
from system0.data.serialization import (
    FEATURE_NAMES,
    PAD_VALUE,
    decode_game_states,
    features,
    features_from_records,
    featurize_requests,
    reason_code,
)
from system0.errors import ValidationError


def batch_row(state: dict[str, Any]) -> np.ndarray:
    """The batch path's feature row for ``state``: decode its JSON, then ``features``."""
    return features(decode_game_states(json.dumps([state]).encode()))[0]


def test_every_request_form_gives_the_batch_paths_row() -> None:
    s = game_state()
    want = batch_row(s)
    text = json.dumps(s).encode()
    forms = [
        s,
        GameState.model_validate(s),
        text,
        bytearray(text),
        memoryview(text),
        b"  \n" + text,
        msgspec.msgpack.encode(s),
    ]
    out = featurize_requests(forms)
    assert out.errors == []
    assert out.rows == list(range(len(forms)))
    assert out.matrix.shape == (len(forms), len(FEATURE_NAMES))
    assert out.matrix.dtype == np.float32
    for row in out.matrix:
        np.testing.assert_array_equal(row, want)


def _broken() -> list[dict[str, Any]]:
    out = []
    for mutate in (
        lambda s: s.pop("health"),
        lambda s: s.update(speed=3),
        lambda s: s["position"].update(x=1.5),
        lambda s: s.update(health=-1.0),
        lambda s: s["cooldowns"].update(r="soon"),
        lambda s: s["cooldowns"].pop("d"),
        lambda s: s.update(vision_score=True),
        lambda s: s.update(inventory=["boots", "excalibur"]),
        lambda s: s.update(inventory=["boots"] * 7),
        lambda s: s.update(timestamp="yesterday"),
        lambda s: s.update(timestamp="1999-12-31T23:59:59Z"),
        lambda s: s.update(champion=""),
        lambda s: s.update(schema_version=2),
        lambda s: s.update(position=[0.5, 0.5]),
        lambda s: s.update(gold_advantage=None),
    ):
        s = copy.deepcopy(game_state())
        mutate(s)
        out.append(s)
    return out


def test_reasons_are_exactly_the_codecs_for_every_form() -> None:
    broken = _broken()
    decoded = decode_game_states(json.dumps(broken).encode())
    want = sorted(decoded.errors)
    assert {e[0] for e in want} == set(range(len(broken)))  # each one breaks a rule
    for forms in (
        broken,
        [json.dumps(s).encode() for s in broken],
        [msgspec.msgpack.encode(s) for s in broken],
    ):
        out = featurize_requests(forms)
        assert out.rows == [] and out.matrix.shape == (0, len(FEATURE_NAMES))
        assert sorted(out.errors) == want


def test_rows_and_errors_name_their_request() -> None:
    good, bad = game_state(), game_state(health=-5.0)
    out = featurize_requests([bad, good, b"{oops", good], pad_rows_to=4)
    assert out.rows == [1, 3]
    assert out.matrix.shape == (4, len(FEATURE_NAMES))
    assert (out.matrix[2:] == PAD_VALUE).all()
    codes = [(i, reason_code(path, code)) for i, path, code, _ in out.errors]
    assert codes == [(0, "greater_than_equal:health"), (2, "json_invalid")]
    with pytest.raises(ValueError, match="pad_rows_to=1"):
        featurize_requests([good, good], pad_rows_to=1)


def test_python_values_read_as_their_json_form() -> None:
    tz = timezone(timedelta(hours=-5, minutes=-30))
    aware = datetime(2024, 5, 1, 6, 30, 0, 250_000, tzinfo=tz)
    ok = [
        game_state(timestamp=aware),  # what a JSON encoder writes: 2024-05-01T06:30:00.25-05:30
        game_state(timestamp=datetime(2024, 5, 1, 12, tzinfo=UTC)),
        game_state(inventory=("boots", "dagger")),  # a tuple is a JSON array
        game_state(health=2**16),  # an int reads as the float JSON gives it
    ]
    out = featurize_requests(ok)
    assert out.errors == [] and out.rows == [0, 1, 2, 3]
    np.testing.assert_array_equal(out.matrix[3], batch_row(game_state(health=float(2**16))))
    # an int past 64 bits is a float too, as in JSON: refused by its range, not as a type
    huge = featurize_requests([game_state(health=2**70)])
    assert [(p, c) for _, p, c, _ in huge.errors] == [("health", "less_than_equal")]
    bad = featurize_requests(
        [
            game_state(timestamp=datetime(2024, 5, 1, 12)),  # naive: no offset
            {**game_state(), 7: 1},  # json.dumps writes the key "7"
            game_state(mana={1, 2}),  # no JSON form
            game_state(health=10**400),  # past float: not finite
            game_state(vision_score=float("nan")),  # JSON text has no NaN; a float can
        ]
    )
    got = {(i, reason_code(p, c)) for i, p, c, _ in bad.errors}
    assert got == {
        (0, "timestamp_invalid:timestamp"),
        (1, "extra_forbidden:7"),
        (2, "float_type:mana"),
        (3, "finite_number:health"),
        (4, "finite_number:vision_score"),
    }


def test_a_large_batch_agrees_with_requests_one_by_one() -> None:
    # 200 requests: past the size where the GIL is released for the validation
    states = [game_state(health=float(i), inventory=["boots"] * (i % 7)) for i in range(200)]
    whole = featurize_requests(states)
    assert whole.rows == list(range(200)) and whole.errors == []
    one_by_one = np.concatenate([featurize_requests([s]).matrix for s in states])
    np.testing.assert_array_equal(whole.matrix, one_by_one)


def test_bad_calls_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match="wrap a single one in a list"):
        featurize_requests(game_state())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sequence of requests"):
        featurize_requests(42)  # type: ignore[arg-type]


def test_a_request_that_holds_itself_is_refused_alone() -> None:
    cyclic: dict[str, Any] = game_state()
    cyclic["position"] = cyclic
    # the same list twice at every level: 2**40 values as JSON, from a few objects
    shared: list[Any] = [0.0]
    for _ in range(40):
        shared = [shared, shared]
    wide = game_state(inventory=shared)
    out = featurize_requests([cyclic, game_state(), wide])
    assert out.rows == [1]
    got = [(i, code, msg.split(";")[0]) for i, _, code, msg in out.errors]
    assert got == [
        (0, "too_large", "request nests deeper than 128 levels (does it hold itself?)"),
        (2, "too_large", "request holds more than 65536 values"),
    ]


def test_features_from_records_raises_on_the_first_refused_record() -> None:
    np.testing.assert_array_equal(features_from_records([game_state()])[0], batch_row(game_state()))
    with pytest.raises(ValidationError, match=r"record 1 .* health: greater_than_equal"):
        features_from_records([game_state(), game_state(health=-1.0)])
