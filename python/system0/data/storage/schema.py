"""The TrainingSample Arrow schema as storage sees it, and columnar synthetic samples.

Storage keeps the Arrow table it is given and records the schema's fingerprint in each
manifest. The schema here is the codec's own (``system0.data.contract.training_sample_schema``,
built by ``rust/codec/columns.rs``), so tests, benchmarks and the demo can build realistic
batches without going through JSON and still match what
``system0.data.serialization.decode_training_samples`` produces. ``synthetic_samples`` builds
them column by column with numpy (no per-row Python work, even for millions of rows), and only
with values the contract admits: action kinds, slots and items from the contract, every number
inside its ``contract.RANGES`` bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from system0.data.contract import (
    ABILITY_SLOTS,
    ACTION_KINDS,
    ITEM_VOCABULARY,
    MAX_INVENTORY,
    RANGES,
    training_sample_schema,
)

CHAMPIONS: tuple[str, ...] = ("Ahri", "Garen", "Jinx", "Lux", "Thresh", "Yasuo", "Zed", "Annie")

_EPOCH_2024_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds
_STEP_US = 250_000  # one tick


def sample_schema() -> pa.Schema:
    """The Arrow schema of a TrainingSample batch (nested structs), exactly as the codec emits
    it, metadata included."""
    return training_sample_schema()


def game_state_type() -> pa.StructType:
    """The struct type of the ``state`` (and ``next_state``) column."""
    t = sample_schema().field("state").type
    assert isinstance(t, pa.StructType)
    return t


def _within(path: str, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lo, hi = RANGES[path]
    return np.clip(values, lo, hi)


def _state(rng: np.random.Generator, n: int, ts_us: npt.NDArray[np.int64]) -> pa.StructArray:
    state_type = game_state_type()
    inventory_type = state_type.field("inventory").type
    inv_len = rng.integers(0, MAX_INVENTORY + 1, n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(inv_len, out=offsets[1:])
    # dictionary-encoded over the whole vocabulary, as the codec emits inventories
    codes = rng.integers(0, len(ITEM_VOCABULARY), int(offsets[-1])).astype(np.uint16)
    items = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(ITEM_VOCABULARY, pa.string()))
    arrays: list[Any] = [
        pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        pa.array(np.array(CHAMPIONS, dtype=object)[rng.integers(0, len(CHAMPIONS), n)]),
        pa.array(_within("position.x", rng.random(n))),
        pa.array(_within("position.y", rng.random(n))),
        pa.array(_within("health", rng.random(n) * 3000.0)),
        pa.array(_within("mana", rng.random(n) * 1500.0)),
    ]
    arrays += [pa.array(_within(f"cooldowns.{s}", rng.random(n) * 20.0)) for s in ABILITY_SLOTS]
    arrays += [
        pa.ListArray.from_arrays(pa.array(offsets), items, type=inventory_type),
        pa.array(_within("vision_score", rng.random(n) * 100.0)),
        pa.array(_within("gold_advantage", rng.normal(0.0, 2000.0, n))),
    ]
    return pa.StructArray.from_arrays(arrays, fields=list(state_type))


def _action(rng: np.random.Generator, n: int, action_type: pa.StructType) -> pa.StructArray:
    """Actions of every kind, each carrying exactly the fields its kind has: a target for move
    and attack (and for half of the casts), a slot for cast, an item for buy."""
    kinds = np.array(ACTION_KINDS, dtype=object)[rng.integers(0, len(ACTION_KINDS), n)]
    slots = np.array(ABILITY_SLOTS, dtype=object)[rng.integers(0, len(ABILITY_SLOTS), n)]
    items = np.array(ITEM_VOCABULARY, dtype=object)[rng.integers(0, len(ITEM_VOCABULARY), n)]
    cast, buy = kinds == "cast", kinds == "buy"
    aimed = (kinds == "move") | (kinds == "attack") | (cast & (rng.random(n) < 0.5))
    no_target = ~aimed
    return pa.StructArray.from_arrays(
        [
            pa.array(kinds, type=pa.string()),
            pa.array(slots, mask=~cast, type=pa.string()),
            pa.array(_within("position.x", rng.random(n)), mask=no_target),
            pa.array(_within("position.y", rng.random(n)), mask=no_target),
            pa.array(items, mask=~buy, type=pa.string()),
        ],
        fields=list(action_type),
    )


def synthetic_samples(n: int, *, seed: int = 0, match: str = "m", start_step: int = 0) -> pa.Table:
    """``n`` valid TrainingSamples as an Arrow table, built column-wise (seeded, reproducible).

    ``metadata.step`` runs from ``start_step``; ``metadata.match_id`` is ``match`` plus the step
    modulo 100, so (match_id, step) is unique and a natural order key.
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(start_step, start_step + n, dtype=np.int32)
    ts = _EPOCH_2024_US + steps.astype(np.int64) * _STEP_US
    schema = sample_schema()
    action = _action(rng, n, schema.field("action").type)
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
            _state(rng, n, ts + _STEP_US),
            metadata,
        ],
        schema=schema,
    )


__all__ = ["ABILITY_SLOTS", "CHAMPIONS", "game_state_type", "sample_schema", "synthetic_samples"]
