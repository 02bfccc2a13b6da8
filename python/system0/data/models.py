"""Data contracts: ``GameState``, ``Action`` and ``TrainingSample`` (pydantic v2).

The Rust codec is the single source of the wire contract (``rust/codec/contract.rs``,
re-exported by :mod:`system0.data.contract`): these models take their slots, item vocabulary,
action kinds, limits and numeric ranges from it, and ``tests/data/test_contract_drift.py``
checks their field names against it. The codec (``system0.data.serialization``) validates the
very same rules on its fast path, and a differential test proves that both accept exactly the
same inputs and yield equal values. Rules, on both sides:

* strict types: a float field takes a JSON number (integers included) and nothing else
  (no strings, no booleans); an integer field takes only an integral JSON number;
* every number is finite (NaN and the infinities are refused);
* every bounded number lies in its closed range of ``contract.RANGES``: position ``x`` and
  ``y`` (and action targets) in [0, 1]; health and mana in [0, 100000]; each ability cooldown
  in [0, 3600] s; vision score in [0, 10000]; gold advantage in [-1000000, 1000000]. A value
  below is ``greater_than_equal``, above ``less_than_equal`` (pydantic's and the codec's code).
  These bounds are why every admitted state gives finite features;
* the inventory holds at most ``MAX_INVENTORY`` items, each a name from ``ITEM_VOCABULARY``;
* ``timestamp`` is an RFC 3339 string with an explicit offset (``Z`` or ``+HH:MM``), with
  ``T`` as separator and at most 6 fractional digits, and falls in [2000-01-01, 2100-01-01) UTC;
* ``champion`` is 1 to 32 characters of ASCII letters, digits, space, ``'``, ``.``, ``_``, ``-``;
* ``schema_version`` is ``SCHEMA_VERSION`` (it may be omitted);
* **extra fields are refused** (``extra="forbid"``, reason code ``extra_forbidden``) at every
  level: a producer that adds a field must bump the schema version, and a typo never passes
  silently. Duplicate JSON keys keep the last value, as JSON parsers conventionally do.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from system0.data.contract import (
    ABILITY_SLOTS,
    ACTION_KINDS,
    ITEM_VOCABULARY,
    MAX_CHAMPION,
    MAX_INVENTORY,
    MAX_METADATA_STRING,
    MAX_STEP,
    RANGES,
    SCHEMA_VERSION,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
)

if TYPE_CHECKING:
    # the checker sees the plain types; at run time the literals come from the contract
    Version = int
    Slot = str
else:
    Version = Literal[SCHEMA_VERSION]
    Slot = Literal[ABILITY_SLOTS]

_ITEMS = frozenset(ITEM_VOCABULARY)
_TIMESTAMP_RE = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)
_CHAMPION_RE = re.compile(rf"[A-Za-z0-9 '._-]{{1,{MAX_CHAMPION}}}", re.ASCII)


def _range(path: str) -> Any:
    """The ``ge`` / ``le`` bounds of ``path`` in ``contract.RANGES``, as a pydantic Field."""
    lo, hi = RANGES[path]
    return Field(ge=lo, le=hi, allow_inf_nan=False)


Finite = Annotated[float, Field(allow_inf_nan=False)]
Health = Annotated[float, _range("health")]
Mana = Annotated[float, _range("mana")]
VisionScore = Annotated[float, _range("vision_score")]
GoldAdvantage = Annotated[float, _range("gold_advantage")]

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


def format_rfc3339(when: datetime) -> str:
    """``when`` as the wire writes a timestamp: RFC 3339, ``Z`` for UTC, its offset otherwise.

    The one formatter of the package (the Rust core writes log and span times itself);
    :func:`_parse_timestamp` reads what it writes.
    """
    text = when.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _parse_timestamp(value: Any) -> Any:
    """RFC 3339 with an explicit offset only; pydantic's own parser is laxer than the wire."""
    if isinstance(value, str):
        if _TIMESTAMP_RE.fullmatch(value) is None:
            raise ValueError(
                "timestamp must be RFC 3339 with an offset, e.g. 2024-05-01T12:00:00.250Z"
            )
        # the regex leaves only calendar errors (Feb 30) to fromisoformat, which rejects them
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware (give Z or an offset)")
        if not TIMESTAMP_MIN <= value < TIMESTAMP_MAX:
            raise ValueError("timestamp must fall in [2000-01-01, 2100-01-01) UTC")
    return value


def _exact_version(value: Any) -> Any:
    """pydantic's Literal[1] also takes 1.0 and true; the wire contract takes the integer 1."""
    if type(value) is not int:
        raise ValueError(f"schema_version must be the integer {SCHEMA_VERSION}")
    return value


class Position(BaseModel):
    """Normalized map coordinates: (0, 0) is one corner of the map, (1, 1) the opposite."""

    model_config = _STRICT
    x: Annotated[float, _range("position.x")]
    y: Annotated[float, _range("position.y")]


class Cooldowns(BaseModel):
    """Seconds until each ability slot is ready again (0 = ready), slots in ``ABILITY_SLOTS``."""

    model_config = _STRICT
    q: Annotated[float, _range("cooldowns.q")]
    w: Annotated[float, _range("cooldowns.w")]
    e: Annotated[float, _range("cooldowns.e")]
    r: Annotated[float, _range("cooldowns.r")]
    d: Annotated[float, _range("cooldowns.d")]
    f: Annotated[float, _range("cooldowns.f")]


class GameState(BaseModel):
    """One observation of one champion at one instant of a match."""

    model_config = _STRICT
    schema_version: Version = SCHEMA_VERSION
    timestamp: datetime
    champion: str
    position: Position
    health: Health
    mana: Mana
    cooldowns: Cooldowns
    inventory: Annotated[list[str], Field(max_length=MAX_INVENTORY)]
    vision_score: VisionScore
    gold_advantage: GoldAdvantage

    _check_timestamp = field_validator("timestamp", mode="before")(_parse_timestamp)
    _check_version = field_validator("schema_version", mode="before")(_exact_version)

    @field_validator("champion")
    @classmethod
    def _check_champion(cls, value: str) -> str:
        if _CHAMPION_RE.fullmatch(value) is None:
            raise ValueError(f"champion must be 1-{MAX_CHAMPION} of A-Z a-z 0-9 space ' . _ -")
        return value

    @field_validator("inventory")
    @classmethod
    def _check_items(cls, value: list[str]) -> list[str]:
        unknown = [item for item in value if item not in _ITEMS]
        if unknown:
            raise ValueError(f"unknown item(s) {unknown}; see ITEM_VOCABULARY")
        return value


class MoveAction(BaseModel):
    model_config = _STRICT
    kind: Literal["move"]
    target: Position


class AttackAction(BaseModel):
    model_config = _STRICT
    kind: Literal["attack"]
    target: Position


class CastAction(BaseModel):
    """Cast the ability in ``slot``; ``target`` is absent (or null) for self-cast abilities."""

    model_config = _STRICT
    kind: Literal["cast"]
    slot: Slot
    target: Position | None = None


class BuyAction(BaseModel):
    model_config = _STRICT
    kind: Literal["buy"]
    item: str

    @field_validator("item")
    @classmethod
    def _check_item(cls, value: str) -> str:
        if value not in _ITEMS:
            raise ValueError(f"unknown item {value!r}; see ITEM_VOCABULARY")
        return value


class RecallAction(BaseModel):
    model_config = _STRICT
    kind: Literal["recall"]


class IdleAction(BaseModel):
    model_config = _STRICT
    kind: Literal["idle"]


Action = Annotated[
    MoveAction | AttackAction | CastAction | BuyAction | RecallAction | IdleAction,
    Field(discriminator="kind"),
]
"""The action a policy took, a union tagged by ``kind`` (one of ``ACTION_KINDS``)."""


class SampleMetadata(BaseModel):
    """Where a sample came from: match id, step within the match, and producer."""

    model_config = _STRICT
    match_id: Annotated[str, Field(min_length=1, max_length=MAX_METADATA_STRING)]
    step: Annotated[int, Field(ge=0, le=MAX_STEP)]
    source: Annotated[str, Field(min_length=1, max_length=MAX_METADATA_STRING)]


class TrainingSample(BaseModel):
    """One transition: state, action taken, reward, next state (null when terminal)."""

    model_config = _STRICT
    schema_version: Version = SCHEMA_VERSION
    state: GameState
    action: Action
    reward: Finite
    next_state: GameState | None
    metadata: SampleMetadata

    _check_version = field_validator("schema_version", mode="before")(_exact_version)


GameStateList: TypeAdapter[list[GameState]] = TypeAdapter(list[GameState])


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of each contract, keyed by model name."""
    return {
        "GameState": GameState.model_json_schema(),
        "TrainingSample": TrainingSample.model_json_schema(),
        "Action": TypeAdapter(Action).json_schema(),
    }


__all__ = [
    "ABILITY_SLOTS",
    "ACTION_KINDS",
    "ITEM_VOCABULARY",
    "MAX_INVENTORY",
    "SCHEMA_VERSION",
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "Action",
    "AttackAction",
    "BuyAction",
    "CastAction",
    "Cooldowns",
    "GameState",
    "GameStateList",
    "IdleAction",
    "MoveAction",
    "Position",
    "RecallAction",
    "SampleMetadata",
    "TrainingSample",
    "format_rfc3339",
    "json_schemas",
]
