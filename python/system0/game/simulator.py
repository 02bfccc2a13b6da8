"""A synthetic match, deterministic by seed, streaming GameState records for several champions.

It is a toy with the shape of the real thing: each tick every champion's health, mana,
cooldowns, vision and gold move, partly at random (a seeded ``numpy.random.Generator``, so the
same seed replays the same match) and partly from the action its player took on the previous
tick. Records follow the GameState contract field for field (``system0.data.models``), and
:func:`feature_matrix` turns them into the 12 dense feature columns the policy reads, in the
order of the Rust feature layout (position x, y, health, mana, cooldowns q w e r d f, vision,
gold advantage), as raw values: the model normalizes them itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTIONS",
    "CHAMPIONS",
    "FEATURE_NAMES",
    "N_FEATURES",
    "MatchSimulator",
    "Tick",
    "feature_matrix",
]

CHAMPIONS: tuple[str, ...] = ("Ahri", "Garen", "Jinx", "Thresh", "Lee Sin", "Lux")
ACTIONS: tuple[str, ...] = (
    "attack",
    "retreat",
    "cast_q",
    "cast_w",
    "cast_e",
    "cast_r",
    "farm",
    "ward",
)
SLOTS = ("q", "w", "e", "r", "d", "f")
FEATURE_NAMES: tuple[str, ...] = (
    "position_x",
    "position_y",
    "health",
    "mana",
    *(f"cooldown_{s}" for s in SLOTS),
    "vision_score",
    "gold_advantage",
)
N_FEATURES = len(FEATURE_NAMES)

# per champion: max health, max mana, mana cost of q w e r, base cooldown of q w e r d f
_KITS: dict[str, tuple[float, float, tuple[float, ...], tuple[float, ...]]] = {
    "Ahri": (2200, 1200, (55, 60, 45, 100), (7, 9, 12, 90, 180, 300)),
    "Garen": (3200, 0.0, (0, 0, 0, 0), (8, 20, 9, 100, 180, 300)),
    "Jinx": (2300, 1000, (20, 50, 70, 100), (1, 8, 24, 80, 180, 300)),
    "Thresh": (2600, 1100, (80, 50, 60, 100), (18, 22, 13, 140, 180, 300)),
    "Lee Sin": (2700, 400, (50, 50, 50, 0), (11, 14, 10, 110, 180, 300)),
    "Lux": (2100, 1300, (50, 60, 70, 100), (11, 14, 10, 60, 180, 300)),
}
_T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick: the records of every champion, and the same as a (champions, 12) matrix."""

    index: int
    states: tuple[dict[str, Any], ...]
    features: npt.NDArray[np.float32]


class MatchSimulator:
    """``for tick in MatchSimulator(seed=7).run(ticks=200, policy=...)``: one match.

    ``policy(features) -> actions`` picks each champion's action from the tick's feature matrix
    (the scripted player by default); the action shapes the next tick.
    """

    def __init__(
        self, seed: int, champions: Sequence[str] = CHAMPIONS, tick_seconds: float = 0.25
    ) -> None:
        unknown = [c for c in champions if c not in _KITS]
        if unknown or not champions:
            raise ValueError(f"champions must be a non-empty subset of {CHAMPIONS}, got {unknown}")
        if not tick_seconds > 0:
            raise ValueError(f"tick_seconds must be > 0, got {tick_seconds}")
        self.seed = seed
        self.champions = tuple(champions)
        self.dt = tick_seconds
        self.rng = np.random.default_rng(seed)
        n = len(self.champions)
        kits = [_KITS[c] for c in self.champions]
        self.max_hp = np.array([k[0] for k in kits])
        self.max_mana = np.array([k[1] for k in kits])
        self.cost = np.array([k[2] for k in kits])
        self.base_cd = np.array([k[3] for k in kits])
        r = self.rng
        self.pos = r.random((n, 2))
        self.hp = self.max_hp * r.uniform(0.6, 1.0, n)
        self.mana = self.max_mana * r.uniform(0.5, 1.0, n)
        self.cd = self.base_cd * r.uniform(0, 1, (n, 6)) * (r.random((n, 6)) < 0.5)
        self.vision = r.uniform(0, 30, n)
        self.gold = r.normal(0, 1500, n)
        self.tick = 0

    def observe(self) -> Tick:
        feats = np.concatenate(
            [
                self.pos,
                self.hp[:, None],
                self.mana[:, None],
                self.cd,
                self.vision[:, None],
                self.gold[:, None],
            ],
            axis=1,
        ).astype(np.float32)
        ts = (_T0 + timedelta(seconds=self.tick * self.dt)).isoformat().replace("+00:00", "Z")
        states = tuple(
            {
                "timestamp": ts,
                "champion": c,
                "position": {"x": float(feats[i, 0]), "y": float(feats[i, 1])},
                "health": float(feats[i, 2]),
                "mana": float(feats[i, 3]),
                "cooldowns": {s: float(feats[i, 4 + j]) for j, s in enumerate(SLOTS)},
                "inventory": [],
                "vision_score": float(feats[i, 10]),
                "gold_advantage": float(feats[i, 11]),
            }
            for i, c in enumerate(self.champions)
        )
        return Tick(self.tick, states, feats)

    def step(self, actions: npt.ArrayLike) -> None:
        """Advance one tick, applying each champion's action index (see ``ACTIONS``)."""
        a = np.asarray(actions, dtype=np.int64)
        n = len(self.champions)
        if a.shape != (n,) or a.min(initial=0) < 0 or a.max(initial=0) >= len(ACTIONS):
            raise ValueError(f"actions must be {n} indices in [0, {len(ACTIONS)}), got {a}")
        r, dt, rows = self.rng, self.dt, np.arange(n)
        self.cd = np.maximum(self.cd - dt * 4, 0.0)  # cooldowns run fast: 4 s per tick
        self.mana = np.minimum(self.mana + self.max_mana * 0.01, self.max_mana)
        self.hp = self.hp - r.exponential(self.max_hp * 0.01)
        self.vision = np.maximum(self.vision - r.uniform(0, 1, n), 0.0)
        self.gold = self.gold + r.normal(0, 60, n)
        self.pos = np.clip(self.pos + r.normal(0, 0.02, (n, 2)), 0.0, 1.0)
        for slot in range(4):  # casts: cooldown and mana, damage dealt is gold
            cast = a == 2 + slot
            ok = cast & (self.cd[:, slot] == 0) & (self.mana >= self.cost[:, slot])
            self.cd[ok, slot] = self.base_cd[ok, slot]
            self.mana[ok] -= self.cost[ok, slot]
            self.gold[ok] += 40 + 120 * (slot == 3)
        attack = a == 0
        self.gold[attack] += r.normal(25, 10, int(attack.sum()))
        self.hp[attack] -= self.max_hp[attack] * 0.02
        retreat = a == 1
        self.hp[retreat] += self.max_hp[retreat] * 0.08
        self.pos[retreat] = self.pos[retreat] * 0.9
        farm = a == 6
        self.gold[farm] += 35
        ward = a == 7
        self.vision[ward] += 8
        dead = self.hp <= 0  # a champion that dies respawns at the fountain, full health
        self.hp[dead] = self.max_hp[dead]
        self.gold[dead] -= 300
        self.hp = np.clip(self.hp, 1.0, self.max_hp)
        self.pos[rows[dead]] = 0.0
        self.tick += 1

    def run(self, ticks: int, policy: Any = None) -> Iterator[Tick]:
        """Yield ``ticks`` ticks, stepping each with ``policy(features)`` (scripted default)."""
        from system0.game.heuristic import heuristic_actions

        choose = policy if policy is not None else heuristic_actions
        for _ in range(ticks):
            tick = self.observe()
            yield tick
            self.step(choose(tick.features))


def feature_matrix(states: Sequence[dict[str, Any]]) -> npt.NDArray[np.float32]:
    """The (rows, 12) raw feature matrix of GameState records (dicts or models' dumps)."""
    out = np.empty((len(states), N_FEATURES), np.float32)
    for i, s in enumerate(states):
        cd = s["cooldowns"]
        out[i] = (
            s["position"]["x"],
            s["position"]["y"],
            s["health"],
            s["mana"],
            cd["q"],
            cd["w"],
            cd["e"],
            cd["r"],
            cd["d"],
            cd["f"],
            s["vision_score"],
            s["gold_advantage"],
        )
    return out
