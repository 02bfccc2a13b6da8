"""Golden sets: recorded from a trusted model, saved as an artifact, judged within tolerance."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from system0.errors import GoldenMismatch, ValidationError
from system0.game.policy import load_policy
from system0.interfaces.model_interface import NumpyModelInterface
from system0.serving.golden import GoldenSet

from .conftest import biased_mlp, state

STATES = [state(), state(health=400.0), state(cooldowns={"q": 5.0, "r": 60.0}, mana=30.0)]


def test_recorded_set_passes_its_model_and_survives_a_round_trip(tmp_path: pathlib.Path) -> None:
    policy = load_policy()
    golden = GoldenSet.record(policy, STATES)
    golden.check(policy)
    golden.save(tmp_path / "golden.npz")
    again = GoldenSet.load(tmp_path / "golden.npz")
    np.testing.assert_array_equal(again.inputs, golden.inputs)
    assert (again.atol, again.require_actions) == (golden.atol, golden.require_actions)
    again(policy)


def test_another_model_is_refused_naming_the_row() -> None:
    golden = GoldenSet.record(NumpyModelInterface(biased_mlp(2), name="a"), STATES)
    other = NumpyModelInterface(biased_mlp(6), name="b")
    with pytest.raises(GoldenMismatch, match=r"b differs from the golden set on row \d by"):
        golden.check(other)
    loose = GoldenSet(golden.inputs, golden.expected, atol=1.0)
    with pytest.raises(GoldenMismatch, match="changes the action on golden row 0"):
        loose.check(other)
    GoldenSet(golden.inputs, golden.expected, atol=1.0, require_actions=False).check(other)


def test_bad_golden_sets_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValidationError, match="contract"):
        GoldenSet.record(load_policy(), [{"health": 1.0}])
    x = np.zeros((2, 52), np.float32)
    with pytest.raises(ValidationError, match="2 inputs but 1 expected"):
        GoldenSet(x, np.zeros((1, 8), np.float32))
    with pytest.raises(ValidationError, match="atol"):
        GoldenSet(x, np.zeros((2, 8), np.float32), atol=-1)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match="unreadable"):
        GoldenSet.load(tmp_path / "bad.npz")
