"""Storing 100 000 TrainingSamples: system0's router vs pydantic + sqlite ``executemany``.

ours: the samples arrive as an Arrow table (what the codec emits); ``ScalableStorage.commit``
routes the batch (large, so the analytical tier), encodes it once as a Parquet segment, hashes
it, writes it durably (fsync) and commits a new version in the catalog (fsync), into a fresh
storage root each time.

peer: what a user would otherwise write: the same samples as Python dicts, validated by pydantic
models carrying the contract's constraints, flattened to tuples, and inserted with sqlite3
``executemany`` into a fresh WAL database in one transaction (synchronous=FULL, as ours).
Preparing the inputs (the Arrow table; the dicts) is outside the timing for both.
"""

# no `from __future__ import annotations`: pydantic resolves these models at import

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from ratio import Gate

from system0.data.storage import ScalableStorage
from system0.data.storage_schema import ABILITY_SLOTS, synthetic_samples

N = 100_000

Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
_CFG = ConfigDict(extra="forbid", frozen=True)


class _State(BaseModel):
    model_config = _CFG
    timestamp: datetime
    champion: Annotated[str, Field(min_length=1, max_length=32)]
    position_x: Unit
    position_y: Unit
    health: NonNeg
    mana: NonNeg
    cooldown_q: NonNeg
    cooldown_w: NonNeg
    cooldown_e: NonNeg
    cooldown_r: NonNeg
    cooldown_d: NonNeg
    cooldown_f: NonNeg
    inventory: Annotated[list[str], Field(max_length=6)]
    vision_score: NonNeg
    gold_advantage: Finite


class _Action(BaseModel):
    model_config = _CFG
    kind: str
    slot: str | None
    target_x: Unit | None
    target_y: Unit | None
    item: str | None


class _Meta(BaseModel):
    model_config = _CFG
    match_id: Annotated[str, Field(min_length=1, max_length=64)]
    step: Annotated[int, Field(ge=0)]
    source: str


class _Sample(BaseModel):
    model_config = _CFG
    state: _State
    action: _Action
    reward: Finite
    next_state: _State | None
    metadata: _Meta


_SAMPLES = TypeAdapter(list[_Sample])
_STATE_COLS = [
    "ts",
    "champion",
    "x",
    "y",
    "health",
    "mana",
    *[f"cd_{s}" for s in ABILITY_SLOTS],
    "inventory",
    "vision",
    "gold",
]


def _flat_state(s: _State | None) -> tuple[Any, ...]:
    if s is None:
        return (None,) * len(_STATE_COLS)
    return (
        s.timestamp.isoformat(),
        s.champion,
        s.position_x,
        s.position_y,
        s.health,
        s.mana,
        s.cooldown_q,
        s.cooldown_w,
        s.cooldown_e,
        s.cooldown_r,
        s.cooldown_d,
        s.cooldown_f,
        json.dumps(s.inventory),
        s.vision_score,
        s.gold_advantage,
    )


def _dict_state(s: dict[str, Any] | None) -> tuple[Any, ...]:
    if s is None:
        return (None,) * len(_STATE_COLS)
    return (
        s["timestamp"].isoformat(),
        s["champion"],
        s["position_x"],
        s["position_y"],
        s["health"],
        s["mana"],
        s["cooldown_q"],
        s["cooldown_w"],
        s["cooldown_e"],
        s["cooldown_r"],
        s["cooldown_d"],
        s["cooldown_f"],
        json.dumps(s["inventory"]),
        s["vision_score"],
        s["gold_advantage"],
    )


def _flatten_dicts(dicts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The issue's measured peer: flattening sample dicts in Python, no validation."""
    return [
        (
            *_dict_state(d["state"]),
            *(d["action"][k] for k in ("kind", "slot", "target_x", "target_y", "item")),
            d["reward"],
            *_dict_state(d["next_state"]),
            *(d["metadata"][k] for k in ("match_id", "step", "source")),
        )
        for d in dicts
    ]


def _flatten_models(dicts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    samples = _SAMPLES.validate_python(dicts)
    return [
        (
            *_flat_state(x.state),
            x.action.kind,
            x.action.slot,
            x.action.target_x,
            x.action.target_y,
            x.action.item,
            x.reward,
            *_flat_state(x.next_state),
            x.metadata.match_id,
            x.metadata.step,
            x.metadata.source,
        )
        for x in samples
    ]


def _peer_store(
    dicts: list[dict[str, Any]], path: Path, flatten: Callable[..., list[tuple[Any, ...]]]
) -> None:
    rows = flatten(dicts)
    cols = (
        [f"s_{c}" for c in _STATE_COLS]
        + ["kind", "slot", "tx", "ty", "item", "reward"]
        + [f"n_{c}" for c in _STATE_COLS]
        + ["match_id", "step", "source"]
    )
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"CREATE TABLE samples ({', '.join(cols)})")
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO samples VALUES ({', '.join('?' * len(cols))})", rows)
    db.execute("COMMIT")
    db.close()


def gates() -> list[Gate]:
    table = synthetic_samples(N, seed=7)
    dicts = table.to_pylist()
    base = Path(tempfile.mkdtemp(prefix="system0-gate-storage-"))
    counter = iter(range(1 << 30))

    def fresh() -> Path:
        d = base / str(next(counter))
        return d

    def ours(n: int) -> None:
        for _ in range(n):
            root = fresh()
            with ScalableStorage(root) as storage:
                storage.commit(table)
            shutil.rmtree(root)

    def peer_with(flatten: Callable[..., list[tuple[Any, ...]]]) -> Callable[[int], None]:
        def peer(n: int) -> None:
            for _ in range(n):
                root = fresh()
                root.mkdir()
                _peer_store(dicts, root / "samples.sqlite", flatten)
                shutil.rmtree(root)

        return peer

    return [
        Gate(
            name="storage: store 100k TrainingSamples (Arrow batch)",
            ours=ours,
            peer=peer_with(_flatten_models),
            peer_name="pydantic validate + flatten + sqlite executemany",
            gate=3.0,
            goal=5.0,
            n=1,
            rounds=5,
        ),
        Gate(
            name="storage: store 100k (peer without validation)",
            ours=ours,
            peer=peer_with(_flatten_dicts),
            peer_name="flatten dicts (no validation) + sqlite executemany",
            gate=2.0,
            goal=5.0,
            n=1,
            rounds=5,
        ),
    ]
