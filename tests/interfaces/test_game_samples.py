"""Training samples of a match: every policy action maps onto the contract's Action union, and
the codec accepts what the simulator produces."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from system0.errors import ValidationError
from system0.game.heuristic import heuristic_actions
from system0.game.samples import contract_action, match_samples, training_batch
from system0.game.simulator import ACTIONS, MatchSimulator


def _match(ticks: int) -> tuple[list, list]:
    states, actions = [], []
    for tick in MatchSimulator(seed=5).run(ticks):
        states.append(tick.states)
        actions.append(heuristic_actions(tick.features))
    return states, actions


def test_each_policy_action_has_its_contract_action() -> None:
    states, _ = _match(1)
    got = {name: contract_action(i, states[0], 0) for i, name in enumerate(ACTIONS)}
    assert got["retreat"] == {"kind": "move", "target": {"x": 0.0, "y": 0.0}}
    assert got["cast_e"] == {"kind": "cast", "slot": "e", "target": None}
    assert got["ward"] == {"kind": "buy", "item": "stealth_ward"}
    assert got["farm"]["target"] == states[0][0]["position"]
    others = [s["position"] for s in states[0][1:]]
    assert got["attack"]["kind"] == "attack" and got["attack"]["target"] in others
    with pytest.raises(ValidationError, match="action must be"):
        contract_action(len(ACTIONS), states[0], 0)


def test_every_action_of_a_match_passes_the_codec() -> None:
    states, actions = _match(6)
    # every policy action at least once, so each mapping meets the codec
    actions[0] = np.arange(len(states[0])) % len(ACTIONS)
    actions[1] = (np.arange(len(states[1])) + 6) % len(ACTIONS)
    docs = match_samples(states, actions, match_id="run/m0", source="test")
    batch = pa.record_batch(training_batch(docs))
    assert batch.num_rows == 6 * 6
    assert docs[-1]["next_state"] is None and docs[-1]["reward"] == 0.0
    first = docs[0]
    assert first["next_state"] == states[1][0]
    assert first["reward"] == pytest.approx(
        (states[1][0]["gold_advantage"] - states[0][0]["gold_advantage"]) / 100
    )
    kinds = set(batch.column("action").field("kind").to_pylist())
    assert kinds == {"move", "attack", "cast", "buy"}


def test_a_sample_the_codec_refuses_raises_with_its_reason_codes() -> None:
    states, actions = _match(2)
    docs = match_samples(states, actions, match_id="run/m0", source="test")
    bad = json.loads(json.dumps(docs))
    bad[1]["state"]["health"] = -5.0
    with pytest.raises(ValidationError, match=r"row 1, at state.health") as err:
        training_batch(bad)
    assert "greater_than_equal:state.health" in str(err.value)
    with pytest.raises(ValidationError, match="ticks but"):
        match_samples(states, actions[:1], match_id="m", source="s")
