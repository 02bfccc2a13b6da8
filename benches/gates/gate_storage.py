"""Storing 100 000 TrainingSamples: system0's router vs pydantic + sqlite ``executemany``.

The samples are the data contract's (``system0.data.models.TrainingSample``), made once from a
seeded generator. ours: they arrive as the Arrow batch the codec decoded them into
(``decode_training_samples``); ``ScalableStorage.commit`` routes the batch (large, so the
analytical tier), encodes it once as a Parquet segment, hashes it, writes it durably (fsync)
and commits a new version in the catalog (fsync), into a fresh storage root each time.

peer: what a user would otherwise write: the same samples as Python dicts, validated by the
contract's pydantic model, flattened to tuples, and inserted with sqlite3 ``executemany`` into
a fresh WAL database in one transaction (synchronous=FULL, as ours). A second row drops the
validation (the issue's measured peer: flattening dicts plus ``executemany``). Preparing the
inputs (the Arrow batch; the dicts) is outside the timing for both.

A third row prices the contract check of a table that did not come from the codec (a pyarrow
table, checked column by column in Rust before anything is written): ours is that commit,
the peer the same commit told the table is not contract data (``contract=None``, today's
unchecked path). The issue allows the check 1.2x at most: the gate is 1/1.2.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from ratio import Gate

from system0.data.models import ITEM_VOCABULARY, TrainingSample
from system0.data.serialization import decode_training_samples
from system0.data.storage import ScalableStorage
from system0.data.storage.schema import synthetic_samples

N = 100_000
SLOTS = ("q", "w", "e", "r", "d", "f")
_SAMPLES: TypeAdapter[list[TrainingSample]] = TypeAdapter(list[TrainingSample])
_STATE_COLS = ["ts", "champion", "x", "y", "health", "mana", *SLOTS, "inventory", "vision", "gold"]


def _state(rng: random.Random, step: int) -> dict[str, Any]:
    minute, second, ms = step // 240 % 60, step // 4 % 60, step % 4 * 250
    return {
        "timestamp": f"2024-05-01T12:{minute:02d}:{second:02d}.{ms:03d}Z",
        "champion": rng.choice(("Ahri", "Garen", "Jinx", "Lux", "Thresh")),
        "position": {"x": rng.random(), "y": rng.random()},
        "health": rng.random() * 3000,
        "mana": rng.random() * 1500,
        "cooldowns": {s: rng.random() * 20 for s in SLOTS},
        "inventory": rng.sample(ITEM_VOCABULARY, rng.randint(0, 6)),
        "vision_score": rng.random() * 100,
        "gold_advantage": rng.gauss(0, 2000),
    }


def _samples(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "state": _state(rng, i),
            "action": {"kind": "cast", "slot": "q", "target": {"x": rng.random(), "y": 0.5}},
            "reward": rng.gauss(0, 1),
            "next_state": _state(rng, i + 1),
            "metadata": {"match_id": f"m-{i % 100}", "step": i, "source": "selfplay"},
        }
        for i in range(n)
    ]


def _flat_dict_state(s: dict[str, Any]) -> tuple[Any, ...]:
    cd = s["cooldowns"]
    return (
        s["timestamp"],
        s["champion"],
        s["position"]["x"],
        s["position"]["y"],
        s["health"],
        s["mana"],
        *(cd[k] for k in SLOTS),
        json.dumps(s["inventory"]),
        s["vision_score"],
        s["gold_advantage"],
    )


def _flatten_dicts(dicts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The issue's measured peer: flattening sample dicts in Python, no validation."""
    out = []
    for d in dicts:
        a = d["action"]
        target = a.get("target") or {}
        out.append(
            (
                *_flat_dict_state(d["state"]),
                a["kind"],
                a.get("slot"),
                target.get("x"),
                target.get("y"),
                a.get("item"),
                d["reward"],
                *_flat_dict_state(d["next_state"]),
                *(d["metadata"][k] for k in ("match_id", "step", "source")),
            )
        )
    return out


def _flat_state(s: Any) -> tuple[Any, ...]:
    cd = s.cooldowns
    return (
        s.timestamp.isoformat(),
        s.champion,
        s.position.x,
        s.position.y,
        s.health,
        s.mana,
        cd.q,
        cd.w,
        cd.e,
        cd.r,
        cd.d,
        cd.f,
        json.dumps(s.inventory),
        s.vision_score,
        s.gold_advantage,
    )


def _flatten_models(dicts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Validate with the contract's pydantic model, then flatten the validated objects."""
    out = []
    for x in _SAMPLES.validate_python(dicts):
        a = x.action
        target = getattr(a, "target", None)
        out.append(
            (
                *_flat_state(x.state),
                a.kind,
                getattr(a, "slot", None),
                target.x if target else None,
                target.y if target else None,
                getattr(a, "item", None),
                x.reward,
                *_flat_state(x.next_state),
                x.metadata.match_id,
                x.metadata.step,
                x.metadata.source,
            )
        )
    return out


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
    dicts = _samples(N)
    decoded = decode_training_samples([json.dumps(d).encode() for d in dicts])
    if decoded.num_rows != N:
        raise RuntimeError(f"the generator made invalid samples: {decoded.errors[:3]}")
    base = Path(tempfile.mkdtemp(prefix="system0-gate-storage-"))
    counter = iter(range(1 << 30))

    def ours(n: int) -> None:
        for _ in range(n):
            root = base / str(next(counter))
            with ScalableStorage(root) as storage:
                storage.commit(decoded)
            shutil.rmtree(root)

    def peer_with(flatten: Callable[..., list[tuple[Any, ...]]]) -> Callable[[int], None]:
        def peer(n: int) -> None:
            for _ in range(n):
                root = base / str(next(counter))
                root.mkdir()
                _peer_store(dicts, root / "samples.sqlite", flatten)
                shutil.rmtree(root)

        return peer

    table = synthetic_samples(N, seed=7)

    def store_table(contract: Any) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                root = base / str(next(counter))
                with ScalableStorage(root) as storage:
                    storage.commit(table, contract=contract)
                shutil.rmtree(root)

        return run

    return [
        Gate(
            name="storage: store 100k TrainingSamples (Arrow batch)",
            ours=ours,
            peer=peer_with(_flatten_models),
            peer_name="pydantic TrainingSample + flatten + sqlite executemany",
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
        Gate(
            name="storage: store 100k pyarrow table, contract checked",
            ours=store_table("auto"),
            peer=store_table(None),
            peer_name="the same commit unchecked (contract=None)",
            gate=1 / 1.2,
            goal=0.95,
            n=1,
            rounds=9,
        ),
    ]
