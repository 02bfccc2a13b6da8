"""The scripted player: a few rules a human would write, and the engine's fallback policy.

It reads the same raw features as the policy network and is deterministic (no state, no
randomness), so the answers it gives when the model is unavailable are reproducible.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["heuristic_actions", "heuristic_probabilities"]

ATTACK, RETREAT, CAST_Q, CAST_W, CAST_E, CAST_R, FARM, WARD = range(8)


def heuristic_actions(features: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """One action index per row of a (rows, 12) raw feature matrix; first matching rule wins."""
    f = np.asarray(features, dtype=np.float32)
    if f.ndim == 1:
        f = f[None, :]
    health, mana, gold, vision = f[:, 2], f[:, 3], f[:, 11], f[:, 10]
    cd = f[:, 4:10]
    rules = [
        (health < 700, RETREAT),
        ((cd[:, 3] == 0) & (mana >= 100) & (gold > -1000), CAST_R),
        ((cd[:, 0] == 0) & (mana >= 80), CAST_Q),
        ((cd[:, 1] == 0) & (mana >= 60), CAST_W),
        ((cd[:, 2] == 0) & (mana >= 70), CAST_E),
        (vision < 8, WARD),
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
