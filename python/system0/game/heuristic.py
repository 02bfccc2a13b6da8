"""The scripted player: a few rules a human would write, and the engine's fallback policy.

It reads the documented feature layout (``system0.data.serialization.FEATURE_NAMES``: the 12
dense columns scaled by ``SCALES``, then the inventory multi-hot), the very rows the policy
network and the engine see, and undoes the scales it needs to state its rules in game units.
It is deterministic (no state, no randomness), so the answers it gives when the model is
unavailable are reproducible.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from system0.data.serialization import FEATURE_NAMES, SCALES
from system0.errors import ValidationError

__all__ = ["heuristic_actions", "heuristic_probabilities"]

ATTACK, RETREAT, CAST_Q, CAST_W, CAST_E, CAST_R, FARM, WARD = range(8)

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_COOLDOWNS = [_COL[f"cooldown_{s}"] for s in "qwer"]
# a champion carrying a ward item places it early, before its vision runs out
_WARD_ITEMS = [_COL["item_control_ward"], _COL["item_stealth_ward"]]


def _layout(features: npt.ArrayLike) -> npt.NDArray[np.float64]:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 1:
        f = f[None, :]
    if f.ndim != 2 or f.shape[1] != len(FEATURE_NAMES):
        raise ValidationError(
            f"the scripted player reads (rows, {len(FEATURE_NAMES)}) feature rows in the "
            f"documented layout (system0.data.serialization.FEATURE_NAMES), got shape "
            f"{np.shape(features)}; featurize GameStates with serialization.features"
        )
    return f


def heuristic_actions(features: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """One action index per feature row of the documented layout; first matching rule wins."""
    f = _layout(features)
    # back to game units: the rules below are written in health points, seconds and gold
    health = f[:, _COL["health"]] * SCALES["health"]
    mana = f[:, _COL["mana"]] * SCALES["mana"]
    vision = f[:, _COL["vision_score"]] * SCALES["vision_score"]
    gold = f[:, _COL["gold_advantage"]] * SCALES["gold_advantage"]
    ready = f[:, _COOLDOWNS] == 0.0  # a zero cooldown is exactly zero at any scale
    has_ward = f[:, _WARD_ITEMS].max(axis=1) > 0.5
    rules = [
        (health < 700, RETREAT),
        (ready[:, 3] & (mana >= 100) & (gold > -1000), CAST_R),
        (ready[:, 0] & (mana >= 80), CAST_Q),
        (ready[:, 1] & (mana >= 60), CAST_W),
        (ready[:, 2] & (mana >= 70), CAST_E),
        ((vision < 8) | (has_ward & (vision < 20)), WARD),
        (gold < -1500, FARM),
    ]
    out = np.full(len(f), ATTACK, dtype=np.int64)
    decided = np.zeros(len(f), dtype=bool)
    for cond, action in rules:
        take = cond & ~decided
        out[take] = action
        decided |= take
    return out


def heuristic_probabilities(features: npt.ArrayLike, n_actions: int = 8) -> npt.NDArray[np.float32]:
    """One-hot probabilities of :func:`heuristic_actions` (the shape the model answers in)."""
    a = heuristic_actions(features)
    out = np.zeros((len(a), n_actions), np.float32)
    out[np.arange(len(a)), a] = 1.0
    return out
