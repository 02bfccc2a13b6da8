"""The game states the gate's suites feed a model: simulated matches, fixed by a seed.

Every suite that needs realistic inputs draws them here, so the golden set, the attacks and the
timings all see the states a match really produces (the demo's simulator, stepped by the
scripted player) and the same seed gives the same states on every run and machine.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data.serialization import featurize_requests, reason_code
from system0.errors import ValidationError
from system0.game.simulator import MatchSimulator

__all__ = ["feature_rows", "match_states", "state_bytes"]


def match_states(n: int, seed: int = 15) -> list[dict[str, Any]]:
    """``n`` GameState records of seeded simulated matches (six champions a tick; a new match
    every 100 ticks so the states span early and late game)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out: list[dict[str, Any]] = []
    match = 0
    while len(out) < n:
        for tick in MatchSimulator(seed=seed + match).run(ticks=100):
            out.extend(tick.states)
            if len(out) >= n:
                break
        match += 1
    return out[:n]


def feature_rows(states: list[dict[str, Any]]) -> npt.NDArray[np.float32]:
    """The feature matrix of ``states`` through the codec (the engine's own request path)."""
    matrix, _, errors = featurize_requests(states)
    if errors:
        i, path, code, _ = errors[0]
        raise ValidationError(
            f"state {i} breaks the GameState contract ({reason_code(path, code)}); the gate "
            "feeds only valid states to a model, fix the state or its scenario"
        )
    return np.ascontiguousarray(matrix, dtype=np.float32)


def state_bytes(states: list[dict[str, Any]]) -> list[bytes]:
    """Each state as the JSON bytes a client sends."""
    return [json.dumps(s, separators=(",", ":")).encode() for s in states]
