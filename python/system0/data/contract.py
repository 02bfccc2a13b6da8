"""The wire contract of GameState / TrainingSample / Action, as the Rust codec defines it.

The codec (``rust/codec/contract.rs``) is the single source of these rules: it applies them
on every decode (JSON, msgpack, protobuf), and this module re-exports them, read-only, for
everything in Python that needs them. :mod:`system0.data.models` builds its pydantic fields
from these names and ranges; :mod:`system0.data.storage.schema` takes its Arrow schema from
:func:`training_sample_schema`; ``tests/data/test_contract_drift.py`` fails when any other copy
(the ``.proto``, the simulator) disagrees with them. Change a rule in Rust, not here.

``RANGES`` maps each bounded GameState leaf, by dotted path (``position.x``, ``health``,
``cooldowns.q`` ...), to its closed interval ``(lo, hi)``; a value outside is refused with the
reason ``greater_than_equal:{path}`` or ``less_than_equal:{path}``. The bounds are what the game
can produce with headroom, and keep every feature column (``FEATURE_NAMES``) finite in float32.
Position bounds hold for action targets too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from system0 import _core

if TYPE_CHECKING:
    import pyarrow as pa

_WIRE = _core.wire_contract()

SCHEMA_VERSION: int = _WIRE.schema_version
"""Version of the GameState / TrainingSample contract."""

ABILITY_SLOTS: tuple[str, ...] = tuple(_WIRE.ability_slots)
"""Ability slots in their fixed order (record fields, feature columns)."""

ITEM_VOCABULARY: tuple[str, ...] = tuple(_WIRE.item_vocabulary)
"""Every item name the contract knows, sorted; index i is inventory feature column i."""

ACTION_KINDS: tuple[str, ...] = tuple(_WIRE.action_kinds)
"""The tags of the action union."""

ACTION_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {kind: tuple(fields) for kind, fields in _WIRE.action_fields.items()}
)
"""The fields each action kind carries, ``kind`` first."""

ACTION_OPTIONAL: frozenset[tuple[str, str]] = frozenset(_WIRE.action_optional)
"""``(kind, field)`` pairs that may be omitted or null (a self-cast has no target)."""

GAME_STATE_FIELDS: tuple[str, ...] = tuple(_WIRE.game_state_fields)
GAME_STATE_OPTIONAL: frozenset[str] = frozenset(_WIRE.game_state_optional)
TRAINING_SAMPLE_FIELDS: tuple[str, ...] = tuple(_WIRE.training_sample_fields)
TRAINING_SAMPLE_OPTIONAL: frozenset[str] = frozenset(_WIRE.training_sample_optional)
POSITION_FIELDS: tuple[str, ...] = tuple(_WIRE.position_fields)
METADATA_FIELDS: tuple[str, ...] = tuple(_WIRE.metadata_fields)

MAX_INVENTORY: int = _WIRE.max_inventory
"""Most items one inventory may hold."""
MAX_CHAMPION: int = _WIRE.max_champion
"""Longest champion name, in characters."""
MAX_METADATA_STRING: int = _WIRE.max_metadata_string
"""Longest ``metadata.match_id`` / ``metadata.source``, in characters."""
MAX_STEP: int = _WIRE.max_step
"""Largest ``metadata.step``."""

TIMESTAMP_RANGE_US: tuple[int, int] = _WIRE.timestamp_range_us
"""``[lo, hi)`` of ``timestamp`` in microseconds since the epoch, UTC."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP_MIN: datetime = _EPOCH + timedelta(microseconds=TIMESTAMP_RANGE_US[0])
TIMESTAMP_MAX: datetime = _EPOCH + timedelta(microseconds=TIMESTAMP_RANGE_US[1])
"""Exclusive."""

RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(dict(_WIRE.ranges))
"""Dotted path -> closed interval ``(lo, hi)`` of each bounded GameState leaf."""

FEATURE_NAMES: tuple[str, ...] = tuple(_core.feature_names())
"""The feature matrix columns of ``rust/features``: 12 scaled dense columns, then the items."""


def game_state_schema() -> pa.Schema:
    """The Arrow schema of a decoded GameState batch, as the codec builds it."""
    import pyarrow as pa

    return pa.schema(_WIRE.game_state_schema())


def training_sample_schema() -> pa.Schema:
    """The Arrow schema of a decoded TrainingSample batch, as the codec builds it."""
    import pyarrow as pa

    return pa.schema(_WIRE.training_sample_schema())


__all__ = [
    "ABILITY_SLOTS",
    "ACTION_FIELDS",
    "ACTION_KINDS",
    "ACTION_OPTIONAL",
    "FEATURE_NAMES",
    "GAME_STATE_FIELDS",
    "GAME_STATE_OPTIONAL",
    "ITEM_VOCABULARY",
    "MAX_CHAMPION",
    "MAX_INVENTORY",
    "MAX_METADATA_STRING",
    "MAX_STEP",
    "METADATA_FIELDS",
    "POSITION_FIELDS",
    "RANGES",
    "SCHEMA_VERSION",
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "TIMESTAMP_RANGE_US",
    "TRAINING_SAMPLE_FIELDS",
    "TRAINING_SAMPLE_OPTIONAL",
    "game_state_schema",
    "training_sample_schema",
]
