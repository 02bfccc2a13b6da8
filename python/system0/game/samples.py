"""Training samples of a simulated match, in the contract's terms and through the codec.

The simulator's player picks one of eight actions (``system0.game.simulator.ACTIONS``); the
contract's ``Action`` is a union tagged by ``kind`` (move, attack, cast, buy, recall, idle).
The mapping, chosen to say what the simulator does with each action:

============ ========================================================================
policy       contract ``Action``
============ ========================================================================
attack       ``attack``, target: the position of the nearest other champion (the
             simulator has no other units; the nearest champion is who is fought)
retreat      ``move``, target: the fountain at (0, 0), where a retreat heads
cast_q .. r  ``cast`` with slot ``q`` .. ``r``, no target (the simulator aims nothing)
farm         ``attack``, target: the champion's own position (the minions around it)
ward         ``buy`` ``stealth_ward`` (placing a ward: the contract has no "use item")
============ ========================================================================

``recall`` and ``idle`` are not produced. The reward is the change of gold advantage to the
next state, in hundreds of gold; the last tick of a match is terminal (``next_state`` null,
reward 0). Samples are encoded as JSON and decoded by the Rust codec
(:func:`system0.data.serialization.decode_training_samples`), so what reaches storage is a
codec-validated ``DecodedBatch``; a row the codec refuses raises :class:`ValidationError` with
its reason codes (``code:path``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data.serialization import DecodedBatch, decode_training_samples, reason_code
from system0.errors import ValidationError
from system0.game.simulator import ACTIONS

__all__ = ["REWARD_SCALE", "contract_action", "match_samples", "training_batch"]

REWARD_SCALE = 100.0  # gold per unit of reward
_FOUNTAIN = {"x": 0.0, "y": 0.0}
_CAST_SLOTS = {"cast_q": "q", "cast_w": "w", "cast_e": "e", "cast_r": "r"}


def _nearest_other(states: Sequence[Mapping[str, Any]], i: int) -> dict[str, float]:
    me = states[i]["position"]
    best, where = float("inf"), dict(me)
    for j, s in enumerate(states):
        if j == i:
            continue
        p = s["position"]
        d = (p["x"] - me["x"]) ** 2 + (p["y"] - me["y"]) ** 2
        if d < best:
            best, where = d, {"x": p["x"], "y": p["y"]}
    return where


def contract_action(action: int, states: Sequence[Mapping[str, Any]], i: int) -> dict[str, Any]:
    """The contract ``Action`` (a JSON object) for policy action ``action`` taken by champion
    ``i`` of a tick whose records are ``states`` (see the table in the module doc)."""
    if not 0 <= action < len(ACTIONS):
        raise ValidationError(f"action must be in [0, {len(ACTIONS)}), got {action}")
    name = ACTIONS[action]
    if name == "attack":
        return {"kind": "attack", "target": _nearest_other(states, i)}
    if name == "retreat":
        return {"kind": "move", "target": dict(_FOUNTAIN)}
    if name in _CAST_SLOTS:
        return {"kind": "cast", "slot": _CAST_SLOTS[name], "target": None}
    if name == "farm":
        pos = states[i]["position"]
        return {"kind": "attack", "target": {"x": pos["x"], "y": pos["y"]}}
    return {"kind": "buy", "item": "stealth_ward"}  # ward


def match_samples(
    ticks: Sequence[Sequence[Mapping[str, Any]]],
    actions: Sequence[npt.NDArray[np.int64]],
    *,
    match_id: str,
    source: str,
) -> list[dict[str, Any]]:
    """The TrainingSample documents of one match: ``ticks[t]`` are the records of tick ``t``,
    ``actions[t]`` the action each champion took on it."""
    if len(ticks) != len(actions):
        raise ValidationError(f"{len(ticks)} ticks but {len(actions)} rows of actions")
    out: list[dict[str, Any]] = []
    last = len(ticks) - 1
    for t, (states, acts) in enumerate(zip(ticks, actions, strict=True)):
        for i, state in enumerate(states):
            nxt = ticks[t + 1][i] if t < last else None
            reward = 0.0
            if nxt is not None:
                reward = (nxt["gold_advantage"] - state["gold_advantage"]) / REWARD_SCALE
            out.append(
                {
                    "state": state,
                    "action": contract_action(int(acts[i]), states, i),
                    "reward": float(reward),
                    "next_state": nxt,
                    "metadata": {"match_id": match_id, "step": t, "source": source},
                }
            )
    return out


def training_batch(samples: Sequence[Mapping[str, Any]]) -> DecodedBatch:
    """Encode ``samples`` as JSON and decode them through the codec; every row must pass."""
    if not samples:
        raise ValidationError("no training samples to decode")
    decoded = decode_training_samples(json.dumps(list(samples)).encode())
    if decoded.errors:
        reasons = [reason_code(path, code) for _, path, code, _ in decoded.errors]
        row, path, code, message = decoded.errors[0]
        raise ValidationError(
            f"{len(decoded.errors)} training sample(s) broke the contract; the first, row {row}, "
            f"at {path or '<row>'}: {code} ({message}); reasons: {', '.join(reasons[:8])}"
        )
    return decoded
