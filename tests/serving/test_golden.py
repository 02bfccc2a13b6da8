"""A golden set as a deployment's golden_check: recorded from GameStates by a trusted model,
it refuses another model (naming what moved), a model that raises, and a state off contract."""

from __future__ import annotations

import numpy as np
import pytest

from system0.errors import GateRefused, GoldenMismatch, ValidationError
from system0.game.policy import load_policy
from system0.interfaces.model_interface import NumpyModelInterface
from system0.testing.golden import GoldenSet

from .conftest import biased_mlp, state

STATES = [state(), state(health=400.0), state(cooldowns={"q": 5.0, "r": 60.0}, mana=30.0)]


def test_a_set_recorded_from_states_passes_its_model() -> None:
    policy = load_policy()
    golden = GoldenSet.record_states(policy, STATES)
    assert golden.inputs.shape == (3, 52)
    golden(policy)  # no exception: the deploy goes on


def test_another_model_is_refused_as_a_gate_failure() -> None:
    golden = GoldenSet.record_states(NumpyModelInterface(biased_mlp(2), name="a"), STATES)
    with pytest.raises(GoldenMismatch, match=r"failed: golden: b max \|output - golden\|") as info:
        golden(NumpyModelInterface(biased_mlp(6), name="b"))
    assert isinstance(info.value, GateRefused) and info.value.check == "failed"


def test_a_model_that_raises_fails_its_golden_set() -> None:
    class Broken(NumpyModelInterface):
        def _forward(self, x: np.ndarray) -> np.ndarray:
            raise RuntimeError("weights missing")

    golden = GoldenSet.record_states(load_policy(), STATES)
    with pytest.raises(GoldenMismatch, match=r"raised on its golden set .*weights missing"):
        golden(Broken(biased_mlp(2), name="broken"))


def test_a_state_off_contract_is_refused_when_recording() -> None:
    with pytest.raises(ValidationError, match="contract"):
        GoldenSet.record_states(load_policy(), [{"health": 1.0}])
