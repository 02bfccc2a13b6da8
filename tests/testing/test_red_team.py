"""Red-team scenario files: the shipped ones hold for the shipped policy, a broken rule is
reported with its step, an empty folder is a failure, and bad files are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from gate_variants import moved_bias, shipped_mlp

from system0.errors import ValidationError
from system0.game.policy import load_policy
from system0.interfaces.model_interface import NumpyModelInterface
from system0.testing.red_team import load_scenarios, red_team_suite, shipped_scenarios_dir

STATE = """
state:
  timestamp: "2024-05-01T12:10:00Z"
  champion: Garen
  position: {x: 0.5, y: 0.5}
  health: 2500.0
  mana: 600.0
  cooldowns: {q: 5.0, w: 6.0, e: 7.0, r: 40.0, d: 100.0, f: 200.0}
  inventory: [boots]
  vision_score: 40.0
  gold_advantage: 0.0
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_the_shipped_scenarios_hold_for_the_shipped_policy() -> None:
    result = red_team_suite(load_policy(), shipped_scenarios_dir())
    assert result.passed, [c.detail for c in result.failed_checks]
    assert len(result.checks) == len(load_scenarios(shipped_scenarios_dir())) >= 5


def test_adding_a_scenario_is_writing_a_file(tmp_path: Path) -> None:
    write(tmp_path, "greedy.yaml", STATE + "steps:\n  - set: {health: 100.0}\n    must: [attack]\n")
    result = red_team_suite(load_policy(), tmp_path)
    assert not result.passed
    assert result.checks[0].name == "greedy"
    assert result.checks[0].detail == "step 0: retreat, must be one of ['attack']"


def test_a_drifted_model_breaks_a_shipped_scenario() -> None:
    farmer = NumpyModelInterface(moved_bias(shipped_mlp(), action=6, by=6.0))  # always farms
    result = red_team_suite(farmer, shipped_scenarios_dir())
    assert not result.passed
    assert any("farm" in c.detail for c in result.failed_checks)


def test_an_empty_folder_is_reported_not_passed(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "no scenario here")
    result = red_team_suite(load_policy(), tmp_path)
    assert not result.passed
    assert "holds no *.yaml scenario" in result.checks[0].detail


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("steps:\n  - must: [teleport]\n", "unknown actions ['teleport']"),
        ("steps:\n  - set: {health: 1}\n", "says neither 'must' nor 'must_not'"),
        ("steps:\n  - set: {health: -5.0}\n    must: [retreat]\n", "greater_than_equal:health"),
        ("steps:\n  - set: {armor.x: 1}\n    must: [retreat]\n", "'armor' is not an object"),
        ("steps: []\n", "'steps' must be a non-empty list"),
    ],
)
def test_a_bad_scenario_is_named_with_its_file(tmp_path: Path, steps: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", STATE + steps)
    with pytest.raises(ValidationError) as info:
        load_scenarios(tmp_path)
    assert str(path) in str(info.value) and message in str(info.value)
