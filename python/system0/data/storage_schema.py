"""The TrainingSample Arrow schema as storage sees it, and columnar synthetic samples.

Storage is schema-agnostic: it keeps whatever Arrow table it is given and records the schema's
fingerprint in each manifest. This module mirrors the layout that the codec
(``system0.data.serialization.decode_training_samples``) produces, so that tests, benchmarks and
the demo can build realistic batches without going through JSON. ``synthetic_samples`` builds
them column by column with numpy: no per-row Python work, even for millions of rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

ABILITY_SLOTS: tuple[str, ...] = ("q", "w", "e", "r", "d", "f")
ACTION_KINDS: tuple[str, ...] = ("move", "attack", "cast", "buy", "recall", "idle")
ITEMS: tuple[str, ...] = ("boots", "long_sword", "amplifying_tome", "cloth_armor", "ruby_crystal")
CHAMPIONS: tuple[str, ...] = ("Ahri", "Garen", "Jinx", "Lux", "Thresh", "Yasuo", "Zed", "Annie")

_EPOCH_2024_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds


# items are dictionary-encoded over the item vocabulary, as the codec emits them
_ITEM = pa.dictionary(pa.uint16(), pa.string())
_INVENTORY = pa.list_(pa.field("item", _ITEM, nullable=False))


def game_state_type() -> pa.StructType:
    fields = [
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("champion", pa.string(), nullable=False),
        pa.field("position_x", pa.float64(), nullable=False),
        pa.field("position_y", pa.float64(), nullable=False),
        pa.field("health", pa.float64(), nullable=False),
        pa.field("mana", pa.float64(), nullable=False),
    ]
    fields += [pa.field(f"cooldown_{s}", pa.float64(), nullable=False) for s in ABILITY_SLOTS]
    fields += [
        pa.field("inventory", _INVENTORY, nullable=False),
        pa.field("vision_score", pa.float64(), nullable=False),
        pa.field("gold_advantage", pa.float64(), nullable=False),
    ]
    return pa.struct(fields)


def sample_schema() -> pa.Schema:
    """The Arrow schema of a TrainingSample batch (nested structs, as the codec emits it)."""
    action = pa.struct(
        [
            pa.field("kind", pa.string(), nullable=False),
            pa.field("slot", pa.string()),
            pa.field("target_x", pa.float64()),
            pa.field("target_y", pa.float64()),
            pa.field("item", pa.string()),
        ]
    )
    meta = pa.struct(
        [
            pa.field("match_id", pa.string(), nullable=False),
            pa.field("step", pa.int32(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
        ]
    )
    return pa.schema(
        [
            pa.field("state", game_state_type(), nullable=False),
            pa.field("action", action, nullable=False),
            pa.field("reward", pa.float64(), nullable=False),
            pa.field("next_state", game_state_type()),
            pa.field("metadata", meta, nullable=False),
        ],
        metadata={"system0.contract": "TrainingSample", "system0.schema_version": "1"},
    )


def _state(rng: np.random.Generator, n: int, ts_us: np.ndarray) -> pa.StructArray:
    inv_len = rng.integers(0, 7, n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(inv_len, out=offsets[1:])
    codes = rng.integers(0, len(ITEMS), int(offsets[-1])).astype(np.uint16)
    items = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(ITEMS, pa.string()))
    arrays: list[Any] = [
        pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        pa.array(np.array(CHAMPIONS, dtype=object)[rng.integers(0, len(CHAMPIONS), n)]),
        pa.array(rng.random(n)),
        pa.array(rng.random(n)),
        pa.array(rng.random(n) * 3000.0),
        pa.array(rng.random(n) * 1500.0),
    ]
    arrays += [pa.array(rng.random(n) * 20.0) for _ in ABILITY_SLOTS]
    arrays += [
        pa.ListArray.from_arrays(pa.array(offsets), items, type=_INVENTORY),
        pa.array(rng.random(n) * 100.0),
        pa.array(rng.normal(0.0, 2000.0, n)),
    ]
    return pa.StructArray.from_arrays(arrays, fields=list(game_state_type()))


def synthetic_samples(n: int, *, seed: int = 0, match: str = "m", start_step: int = 0) -> pa.Table:
    """``n`` valid TrainingSamples as an Arrow table, built column-wise (seeded, reproducible).

    ``metadata.step`` runs from ``start_step``; ``metadata.match_id`` is ``match`` plus the step
    modulo 100, so (match_id, step) is unique and a natural order key.
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(start_step, start_step + n, dtype=np.int32)
    ts = _EPOCH_2024_US + steps.astype(np.int64) * 250_000
    schema = sample_schema()
    action_type = schema.field("action").type
    kinds = np.array(ACTION_KINDS, dtype=object)[rng.integers(0, len(ACTION_KINDS), n)]
    # each kind carries the fields the contract gives it: a target (move, attack, cast), a
    # slot (cast), an item (buy), and nothing else
    no_target = ~np.isin(kinds, ("move", "attack", "cast"))
    action = pa.StructArray.from_arrays(
        [
            pa.array(kinds),
            pa.array(np.full(n, "q", dtype=object), mask=kinds != "cast", type=pa.string()),
            pa.array(rng.random(n), mask=no_target),
            pa.array(rng.random(n), mask=no_target),
            pa.array(np.full(n, "boots", dtype=object), mask=kinds != "buy", type=pa.string()),
        ],
        fields=list(action_type),
    )
    meta_type = schema.field("metadata").type
    match_ids = np.char.add(f"{match}-", (steps % 100).astype(str)).astype(object)
    metadata = pa.StructArray.from_arrays(
        [pa.array(match_ids), pa.array(steps), pa.array(np.full(n, "selfplay", dtype=object))],
        fields=list(meta_type),
    )
    return pa.Table.from_arrays(
        [
            _state(rng, n, ts),
            action,
            pa.array(rng.normal(0.0, 1.0, n)),
            _state(rng, n, ts + 250_000),
            metadata,
        ],
        schema=schema,
    )


__all__ = ["ABILITY_SLOTS", "game_state_type", "sample_schema", "synthetic_samples"]
