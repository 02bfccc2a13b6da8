"""The pydantic contracts: constraints a game engineer relies on, and JSON Schema export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import game_state, sample
from pydantic import ValidationError

from system0.data.models import (
    ABILITY_SLOTS,
    ITEM_VOCABULARY,
    SCHEMA_VERSION,
    GameState,
    TrainingSample,
    json_schemas,
)


def test_valid_state_round_trips_through_json() -> None:
    gs = GameState.model_validate_json(json.dumps(game_state()))
    assert gs.timestamp == datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert gs.schema_version == SCHEMA_VERSION
    assert GameState.model_validate_json(gs.model_dump_json()) == gs


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"position": {"x": 1.01, "y": 0.5}}, "x above 1"),
        ({"position": {"x": -0.01, "y": 0.5}}, "x below 0"),
        ({"health": -1}, "negative health"),
        ({"mana": float("nan")}, "NaN"),
        ({"gold_advantage": float("inf")}, "infinity"),
        ({"timestamp": "2024-05-01T12:00:00"}, "naive timestamp"),
        ({"timestamp": "2024-02-30T12:00:00Z"}, "no such day"),
        ({"timestamp": "1999-12-31T23:59:59Z"}, "before 2000"),
        ({"inventory": ["boots"] * 7}, "too many items"),
        ({"inventory": ["excalibur"]}, "unknown item"),
        ({"champion": ""}, "empty champion"),
        ({"health": "530"}, "number as a string (strict)"),
        ({"health": True}, "boolean as a number (strict)"),
        ({"surprise": 1}, "extra field"),
        ({"schema_version": 2}, "unknown schema version"),
    ],
)
def test_contract_refuses(override: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError):
        GameState.model_validate_json(json.dumps(game_state(**override)))


def test_missing_field_is_refused() -> None:
    row = game_state()
    del row["cooldowns"]
    with pytest.raises(ValidationError):
        GameState.model_validate_json(json.dumps(row))


def test_python_datetimes_must_be_aware() -> None:
    row = game_state(timestamp=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))))
    assert GameState.model_validate(row).timestamp.utcoffset() == timedelta(hours=2)
    with pytest.raises(ValidationError):
        GameState.model_validate(game_state(timestamp=datetime(2024, 1, 1)))


def test_training_sample_action_union_and_terminal_state() -> None:
    ts = TrainingSample.model_validate_json(json.dumps(sample(next_state=None)))
    assert ts.next_state is None and ts.action.kind == "cast"
    with pytest.raises(ValidationError):  # buy needs a known item
        TrainingSample.model_validate_json(json.dumps(sample(action={"kind": "buy", "item": "x"})))
    with pytest.raises(ValidationError):  # move needs a target
        TrainingSample.model_validate_json(json.dumps(sample(action={"kind": "move"})))


def test_json_schema_export_carries_the_constraints() -> None:
    schemas = json_schemas()
    gs = schemas["GameState"]
    assert gs["additionalProperties"] is False
    pos = gs["$defs"]["Position"]["properties"]["x"]
    assert pos["minimum"] == 0.0 and pos["maximum"] == 1.0
    assert gs["properties"]["inventory"]["maxItems"] == 6
    assert set(schemas["TrainingSample"]["properties"]) == {
        "schema_version",
        "state",
        "action",
        "reward",
        "next_state",
        "metadata",
    }
    json.dumps(schemas)  # every schema is plain JSON


def test_vocabulary_and_slots_are_fixed() -> None:
    assert list(ITEM_VOCABULARY) == sorted(ITEM_VOCABULARY)
    assert ABILITY_SLOTS == ("q", "w", "e", "r", "d", "f")


def test_the_one_rfc3339_formatter_writes_what_the_contract_reads() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from system0.data.models import _TIMESTAMP_RE, format_rfc3339

    utc = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert format_rfc3339(utc) == "2024-05-01T12:00:00.250000Z"
    east = utc.astimezone(timezone(timedelta(hours=2)))
    assert format_rfc3339(east) == "2024-05-01T14:00:00.250000+02:00"
    for when in (utc, east):
        text = format_rfc3339(when)
        assert _TIMESTAMP_RE.fullmatch(text) and datetime.fromisoformat(text) == when
