"""Codec gates (issue 5): decode + validate 10 000 GameState JSON rows into Arrow, and the
float32 feature matrix of 10 000 rows, each against the peer a user would otherwise pick."""

# no `from __future__ import annotations`: msgspec resolves the Struct annotations at runtime,
# and run_gates loads this file without registering it in sys.modules

import json
import random
from typing import Annotated, Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
from ratio import Gate

from system0.data.models import ITEM_VOCABULARY, GameState, GameStateList
from system0.data.serialization import decode_game_states, features

ROWS = 10_000


def _rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "timestamp": f"2024-05-01T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}.250Z",
            "champion": rng.choice(["Ahri", "Zed", "Lux", "Kai'Sa", "Jinx"]),
            "position": {"x": rng.random(), "y": rng.random()},
            "health": rng.uniform(0, 3000),
            "mana": rng.uniform(0, 2000),
            "cooldowns": {s: rng.choice([0.0, rng.uniform(0, 120)]) for s in "qwerdf"},
            "inventory": rng.sample(ITEM_VOCABULARY, rng.randrange(7)),
            "vision_score": rng.uniform(0, 80),
            "gold_advantage": rng.uniform(-5000, 5000),
        }
        for _ in range(n)
    ]


ROW_DICTS = _rows(ROWS)
DATA = json.dumps(ROW_DICTS).encode()

NonNeg = Annotated[float, msgspec.Meta(ge=0.0)]
Unit = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class MPosition(msgspec.Struct, forbid_unknown_fields=True):
    x: Unit
    y: Unit


class MCooldowns(msgspec.Struct, forbid_unknown_fields=True):
    q: NonNeg
    w: NonNeg
    e: NonNeg
    r: NonNeg
    d: NonNeg
    f: NonNeg


class MGameState(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: str
    champion: str
    position: MPosition
    health: NonNeg
    mana: NonNeg
    cooldowns: MCooldowns
    inventory: Annotated[list[str], msgspec.Meta(max_length=6)]
    vision_score: NonNeg
    gold_advantage: float
    schema_version: int = 1


MSGSPEC = msgspec.json.Decoder(list[MGameState])


def _flat(gs: GameState) -> dict[str, Any]:
    d: dict[str, Any] = {
        "timestamp": gs.timestamp,
        "champion": gs.champion,
        "position_x": gs.position.x,
        "position_y": gs.position.y,
        "health": gs.health,
        "mana": gs.mana,
    }
    for s in "qwerdf":
        d[f"cooldown_{s}"] = getattr(gs.cooldowns, s)
    d["inventory"] = gs.inventory
    d["vision_score"] = gs.vision_score
    d["gold_advantage"] = gs.gold_advantage
    return d


def ours_decode(n: int) -> None:
    for _ in range(n):
        decode_game_states(DATA)


def pydantic_decode(n: int) -> None:
    for _ in range(n):
        states = GameStateList.validate_json(DATA)
        pa.Table.from_pylist([_flat(s) for s in states])


def msgspec_decode(n: int) -> None:
    for _ in range(n):
        MSGSPEC.decode(DATA)


def orjson_arrow(n: int) -> None:
    for _ in range(n):
        pa.Table.from_pylist(orjson.loads(DATA))


BATCH = decode_game_states(DATA)
SLOTS = "qwerdf"
INDEX = {name: i for i, name in enumerate(ITEM_VOCABULARY)}


def ours_features(n: int) -> None:
    for _ in range(n):
        features(BATCH)


def python_features(n: int) -> None:
    width = 12 + len(ITEM_VOCABULARY)
    for _ in range(n):
        out = np.zeros((ROWS, width), dtype=np.float32)
        for i, r in enumerate(ROW_DICTS):
            p, c = r["position"], r["cooldowns"]
            row = out[i]
            row[0], row[1] = p["x"], p["y"]
            row[2], row[3] = r["health"] / 5000, r["mana"] / 5000
            for k, s in enumerate(SLOTS):
                row[4 + k] = c[s] / 300
            row[10], row[11] = r["vision_score"] / 100, r["gold_advantage"] / 10000
            for item in r["inventory"]:
                row[12 + INDEX[item]] = 1.0


def gates() -> list[Gate]:
    return [
        Gate(
            "decode+validate 10k GameState JSON -> Arrow",
            ours_decode,
            pydantic_decode,
            "pydantic TypeAdapter.validate_json + pa.Table.from_pylist",
            gate=5.0,
            goal=10.0,
            n=3,
            rounds=5,
        ),
        Gate(
            "decode+validate 10k GameState JSON vs msgspec",
            ours_decode,
            msgspec_decode,
            "msgspec typed decode alone (no Arrow)",
            gate=0.0,  # informational: the goal is to beat it, not a CI gate
            goal=1.0,
            n=5,
            rounds=7,
        ),
        Gate(
            "decode+validate 10k GameState JSON vs orjson+arrow",
            ours_decode,
            orjson_arrow,
            "orjson.loads + pa.Table.from_pylist (no validation)",
            gate=0.0,  # informational
            goal=1.0,
            n=3,
            rounds=5,
        ),
        Gate(
            "feature matrix 10k rows from Arrow",
            ours_features,
            python_features,
            "Python loop into a float32 numpy matrix",
            gate=10.0,
            goal=20.0,
            n=5,
            rounds=7,
        ),
    ]
