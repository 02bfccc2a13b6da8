"""Data contracts: ``GameState``, ``Action`` and ``TrainingSample`` (pydantic v2).

These models are the contract. The Rust codec (``system0.data.serialization``) validates the
very same rules on its fast path, and a differential test proves that both accept exactly the
same inputs and yield equal values. Rules, on both sides:

* strict types: a float field takes a JSON number (integers included) and nothing else
  (no strings, no booleans); an integer field takes only an integral JSON number;
* every number is finite (NaN and the infinities are refused);
* position ``x`` and ``y`` are normalized map coordinates in [0, 1];
* health, mana, ability cooldowns and vision score are >= 0;
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
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from system0 import _core

SCHEMA_VERSION: Literal[1] = 1
"""Version of the GameState / TrainingSample contract; bump it when a field changes."""

ITEM_VOCABULARY: tuple[str, ...] = tuple(_core.item_vocabulary())
"""Every item name the contract knows, in feature order (index i is inventory column i)."""

MAX_INVENTORY = 6
ABILITY_SLOTS: tuple[str, ...] = ("q", "w", "e", "r", "d", "f")
"""The fixed order of ability slots, in the record and in the feature matrix."""

TIMESTAMP_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive

_ITEMS = frozenset(ITEM_VOCABULARY)
_TIMESTAMP_RE = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)
_CHAMPION_RE = re.compile(r"[A-Za-z0-9 '._-]{1,32}", re.ASCII)

Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


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
        raise ValueError("schema_version must be the integer 1")
    return value


class Position(BaseModel):
    """Normalized map coordinates: (0, 0) is one corner of the map, (1, 1) the opposite."""

    model_config = _STRICT
    x: Unit
    y: Unit


class Cooldowns(BaseModel):
    """Seconds until each ability slot is ready again (0 = ready), slots in ``ABILITY_SLOTS``."""

    model_config = _STRICT
    q: NonNegative
    w: NonNegative
    e: NonNegative
    r: NonNegative
    d: NonNegative
    f: NonNegative


class GameState(BaseModel):
    """One observation of one champion at one instant of a match."""

    model_config = _STRICT
    schema_version: Literal[1] = SCHEMA_VERSION
    timestamp: datetime
    champion: str
    position: Position
    health: NonNegative
    mana: NonNegative
    cooldowns: Cooldowns
    inventory: Annotated[list[str], Field(max_length=MAX_INVENTORY)]
    vision_score: NonNegative
    gold_advantage: Finite

    _check_timestamp = field_validator("timestamp", mode="before")(_parse_timestamp)
    _check_version = field_validator("schema_version", mode="before")(_exact_version)

    @field_validator("champion")
    @classmethod
    def _check_champion(cls, value: str) -> str:
        if _CHAMPION_RE.fullmatch(value) is None:
            raise ValueError("champion must be 1-32 of A-Z a-z 0-9 space ' . _ -")
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
    slot: Literal["q", "w", "e", "r", "d", "f"]
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
"""The action a policy took, a union tagged by ``kind``."""

ACTION_KINDS: tuple[str, ...] = ("move", "attack", "cast", "buy", "recall", "idle")


class SampleMetadata(BaseModel):
    """Where a sample came from: match id, step within the match, and producer."""

    model_config = _STRICT
    match_id: Annotated[str, Field(min_length=1, max_length=64)]
    step: Annotated[int, Field(ge=0, le=2**31 - 1)]
    source: Annotated[str, Field(min_length=1, max_length=64)]


class TrainingSample(BaseModel):
    """One transition: state, action taken, reward, next state (null when terminal)."""

    model_config = _STRICT
    schema_version: Literal[1] = SCHEMA_VERSION
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
    "json_schemas",
]
