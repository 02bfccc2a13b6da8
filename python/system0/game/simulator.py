"""A synthetic match, deterministic by seed, streaming GameState records for several champions.

It is a toy with the shape of the real thing: each tick every champion's health, mana,
cooldowns, vision, gold and inventory move, partly at random (a seeded
``numpy.random.Generator``, so the same seed replays the same match) and partly from the action
its player took on the previous tick. Champions earn gold into a purse and buy items of the
contract's ``ITEM_VOCABULARY`` with it; retreating drinks a potion and warding places a ward
item when one is carried.

Records follow the GameState contract field for field (slot names, item names and the
inventory limit come from :mod:`system0.data.models`), and stay inside its bounds. The feature
matrix of a tick is the documented layout of ``rust/features`` (``FEATURE_NAMES``: 12 scaled
dense columns, then the inventory multi-hot), made by the Rust codec from the tick's JSON,
exactly as the engine makes it from a request: the simulator never featurizes on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data.models import ABILITY_SLOTS, ITEM_VOCABULARY, MAX_INVENTORY, format_rfc3339
from system0.data.serialization import FEATURE_NAMES, decode_game_states, features
from system0.errors import InvalidArgument, ValidationError

__all__ = ["ACTIONS", "CHAMPIONS", "FEATURE_NAMES", "N_FEATURES", "MatchSimulator", "Tick"]

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
ITEM_PRICE = 350.0
CONSUMABLE_PRICE = 75.0
POTIONS = ("health_potion", "corrupting_potion")
WARDS = ("control_ward", "stealth_ward")
CONSUMABLES = POTIONS + WARDS
_LASTING = tuple(item for item in ITEM_VOCABULARY if item not in CONSUMABLES)
# The game saturates these, as real ones do: an all-ward or all-farm player in a long match
# stays a plausible game state (and far inside the contract's bounds).
VISION_CAP = 100.0
GOLD_CAP = 50_000.0


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick: the GameState records of every champion, and their (champions, N_FEATURES)
    feature matrix in the documented layout (``FEATURE_NAMES``), made by the Rust codec."""

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
            raise InvalidArgument(
                f"champions must be a non-empty subset of {CHAMPIONS}, got {unknown}"
            )
        if not tick_seconds > 0:
            raise InvalidArgument(f"tick_seconds must be > 0, got {tick_seconds}")
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
        # spendable gold (gold_advantage is relative to the enemy, this is the champion's own)
        self.purse = r.uniform(0, 2 * ITEM_PRICE, n)
        self.inventory: list[list[str]] = [[] for _ in range(n)]
        self._shop()
        self.tick = 0

    def observe(self) -> Tick:
        """The records of this tick and their feature matrix (one codec call for the tick)."""
        ts = format_rfc3339(_T0 + timedelta(seconds=self.tick * self.dt))
        states = tuple(
            {
                "timestamp": ts,
                "champion": c,
                "position": {"x": float(self.pos[i, 0]), "y": float(self.pos[i, 1])},
                "health": float(self.hp[i]),
                "mana": float(self.mana[i]),
                "cooldowns": {s: float(self.cd[i, j]) for j, s in enumerate(ABILITY_SLOTS)},
                "inventory": list(self.inventory[i]),
                "vision_score": float(self.vision[i]),
                "gold_advantage": float(self.gold[i]),
            }
            for i, c in enumerate(self.champions)
        )
        decoded = decode_game_states(json.dumps(states).encode())
        if decoded.errors:  # the simulator's own bug: never hand out a state the engine refuses
            row, path, code, message = decoded.errors[0]
            raise ValidationError(
                f"simulator tick {self.tick} made a state that breaks the GameState contract "
                f"(row {row}, {code}:{path}: {message}); report this as a bug"
            )
        return Tick(self.tick, states, features(decoded))

    def step(self, actions: npt.ArrayLike) -> None:
        """Advance one tick, applying each champion's action index (see ``ACTIONS``)."""
        a = np.asarray(actions, dtype=np.int64)
        n = len(self.champions)
        if a.shape != (n,) or a.min(initial=0) < 0 or a.max(initial=0) >= len(ACTIONS):
            raise InvalidArgument(f"actions must be {n} indices in [0, {len(ACTIONS)}), got {a}")
        r, dt, rows = self.rng, self.dt, np.arange(n)
        gold_before = self.gold.copy()
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
        drank = self._use(retreat, POTIONS)
        self.hp[retreat] += self.max_hp[retreat] * 0.08
        self.hp[drank] += self.max_hp[drank] * 0.15
        self.pos[retreat] = self.pos[retreat] * 0.9
        farm = a == 6
        self.gold[farm] += 35
        ward = a == 7
        placed = self._use(ward, WARDS)
        self.vision[ward] += 8
        self.vision[placed] += 8  # a ward item lights twice the area of a trinket
        dead = self.hp <= 0  # a champion that dies respawns at the fountain, full health
        self.hp[dead] = self.max_hp[dead]
        self.gold[dead] -= 300
        self.hp = np.clip(self.hp, 1.0, self.max_hp)
        self.pos[rows[dead]] = 0.0
        self.vision = np.minimum(self.vision, VISION_CAP)
        self.gold = np.clip(self.gold, -GOLD_CAP, GOLD_CAP)
        # what a champion gained this tick is income; a passive trickle keeps every purse moving
        self.purse += np.maximum(self.gold - gold_before, 0.0) + 5.0
        self._shop()
        self.tick += 1

    def _use(self, who: npt.NDArray[np.bool_], kinds: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Consume the first carried item of ``kinds`` for each champion in ``who``."""
        used = np.zeros(len(who), dtype=bool)
        for i in np.flatnonzero(who):
            held = [item for item in self.inventory[i] if item in kinds]
            if held:
                self.inventory[i].remove(held[0])
                used[i] = True
        return used

    def _shop(self) -> None:
        """Each champion buys at most one item a tick, drawn by the match's generator (so the
        seed fixes every purchase): a lasting item while fewer than ``MAX_INVENTORY - 1`` are
        carried, else a consumable; the slot kept for a potion or a ward makes the inventory
        keep changing once the lasting items are bought."""
        for i, inv in enumerate(self.inventory):
            if len(inv) >= MAX_INVENTORY:
                continue
            lasting = [item for item in inv if item not in CONSUMABLES]
            if len(lasting) < MAX_INVENTORY - 1 and self.purse[i] >= ITEM_PRICE:
                price, choices = ITEM_PRICE, [x for x in _LASTING if x not in inv]
            elif self.purse[i] >= CONSUMABLE_PRICE:
                price, choices = CONSUMABLE_PRICE, [x for x in CONSUMABLES if x not in inv]
            else:
                continue
            if choices:
                inv.append(choices[int(self.rng.integers(len(choices)))])
                self.purse[i] -= price

    def run(
        self, ticks: int, policy: Callable[[npt.NDArray[np.float32]], Any] | None = None
    ) -> Iterator[Tick]:
        """Yield ``ticks`` ticks, stepping each with ``policy(features)`` (scripted default)."""
        from system0.game.heuristic import heuristic_actions

        choose = policy if policy is not None else heuristic_actions
        for _ in range(ticks):
            tick = self.observe()
            yield tick
            self.step(choose(tick.features))
