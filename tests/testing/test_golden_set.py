"""The golden set: exact file round trip, the shipped policy keeps it on every backend, a
drifted model is refused by ``golden_check`` (what the deploy path calls), bad files are named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gate_variants import moved_bias, shipped_mlp

from system0.errors import GateRefused, ValidationError
from system0.game.policy import load_policy
from system0.interfaces.model_interface import NumpyModelInterface
from system0.testing.golden import GoldenSet, golden_check, shipped_golden_path


def test_a_golden_file_round_trips_bit_for_bit(tmp_path: Path) -> None:
    shipped = GoldenSet.load(shipped_golden_path())
    again = GoldenSet.load(shipped.save(tmp_path / "g.json"))
    assert again.inputs.tobytes() == shipped.inputs.tobytes()
    assert again.outputs.tobytes() == shipped.outputs.tobytes()
    assert np.array_equal(again.actions, shipped.actions)
    assert shipped.model_content_hash == load_policy().introspect().content_hash


def test_the_shipped_policy_keeps_its_golden_set() -> None:
    result = GoldenSet.load(shipped_golden_path()).check(load_policy())
    assert result.passed and result.max_abs_error == 0.0
    golden_check(load_policy())  # no exception


def test_the_torch_backend_keeps_it_within_tolerance() -> None:
    pytest.importorskip("torch", reason="the torch backend needs system0[torch]")
    result = GoldenSet.load(shipped_golden_path()).check(load_policy("torch", device="cpu"))
    assert result.passed, result.describe()


def test_a_drifted_model_is_refused_with_what_drifted() -> None:
    drifted = NumpyModelInterface(moved_bias(shipped_mlp()), name="drifted")
    with pytest.raises(GateRefused) as info:
        golden_check(drifted)
    assert info.value.check == "failed"
    message = str(info.value)
    assert message.startswith("failed: golden: drifted")
    assert "rows off tolerance" in message and "atol 0.0001" in message


def test_a_near_tie_may_fall_either_way_within_the_tolerance() -> None:
    x = np.zeros((1, 52), np.float32)
    golden = GoldenSet(x, np.array([[0.5, 0.49995] + [0.0] * 6], np.float32), np.array([0]))
    # a model answering the other action of the tie, within atol, keeps the set
    swapped = golden.outputs[:, [1, 0, 2, 3, 4, 5, 6, 7]]

    class Fixed(NumpyModelInterface):
        def _forward(self, x: np.ndarray) -> np.ndarray:
            return swapped

    result = golden.check(Fixed(shipped_mlp()))
    assert result.passed and result.action_changed == []


def test_bad_golden_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValidationError, match="not JSON"):
        GoldenSet.load(bad)
    doc = json.loads(shipped_golden_path().read_text())
    doc["feature_names"] = doc["feature_names"][:-1]
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match="another feature layout"):
        GoldenSet.load(bad)
    doc = json.loads(shipped_golden_path().read_text())
    doc["actions"] = doc["actions"][:-1]
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match="rows disagree"):
        GoldenSet.load(bad)
