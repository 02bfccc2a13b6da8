"""GameState requests that break the contract are refused with reason codes, before the model."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from system0.game.contract import check_state, state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.game.policy import load_policy
from system0.game.simulator import MatchSimulator
from system0.interfaces.inference_engine import InferenceEngine, InvalidRequest


def _state() -> dict[str, Any]:
    return copy.deepcopy(MatchSimulator(3).observe().states[0])


def test_a_valid_record_gives_its_feature_row() -> None:
    tick = MatchSimulator(3).observe()
    validate = state_validator(use_data_models=False)
    np.testing.assert_array_equal(validate(tick.states[0]), tick.features[0])
    assert check_state(tick.states[0]) == []


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s.pop("health"), "missing:health"),
        (lambda s: s.update(speed=3), "extra_forbidden:speed"),
        (lambda s: s["position"].update(x=1.5), "range:position.x"),
        (lambda s: s.update(mana=float("nan")), "type:mana"),
        (lambda s: s.update(health=-1.0), "range:health"),
        (lambda s: s["cooldowns"].update(r="soon"), "type:cooldowns.r"),
        (lambda s: s.update(vision_score=True), "type:vision_score"),
    ],
)
def test_each_broken_rule_has_its_reason_code(mutate: Any, reason: str) -> None:
    state = _state()
    mutate(state)
    with pytest.raises(InvalidRequest) as info:
        state_validator(use_data_models=False)(state)
    assert reason in info.value.reasons


def test_every_broken_rule_is_reported_at_once() -> None:
    state = _state()
    state.pop("mana")
    state["position"]["y"] = -0.1
    assert set(check_state(state)) == {"missing:mana", "range:position.y"}


def test_the_engine_refuses_bad_records_before_the_model() -> None:
    model = load_policy("numpy")
    with InferenceEngine(
        model,
        validator=state_validator(use_data_models=False),
        fallback=heuristic_probabilities,
    ) as eng:
        bad = _state()
        bad["health"] = -5.0
        with pytest.raises(InvalidRequest):
            eng.submit(bad, budget=1.0)
        assert model.monitoring.calls == 0
        r = eng.infer(_state(), budget=1.0)
        assert not r.fallback and r.outputs.shape == (8,)
    assert eng.stats.rejected_invalid == 1
