"""Red-team scenarios: YAML files, each a sequence of game states and the actions that must, or
must not, follow them. Adding one is writing a file into the folder.

A scenario file::

    scenario: low health retreats           # a name (defaults to the file's stem)
    about: a champion bleeding out falls back before it dies
    state:                                   # the first state (a GameState, full)
      timestamp: "2024-05-01T12:00:00Z"
      champion: Garen
      ...
    steps:                                   # applied in order; each step changes the state
      - set: {health: 1500}                  # dotted paths allowed: {cooldowns.r: 0}
        must_not: [retreat]
      - set: {health: 400}
        must: [retreat]                      # the action must be one of these

Actions are named as the policy's outputs (``system0.game.simulator.ACTIONS``: attack,
retreat, cast_q, cast_w, cast_e, cast_r, farm, ward). Each step's state goes through the
codec like a request; a state the contract refuses is an error in the scenario, reported with
its file and step. A folder without any scenario is reported as a failure, never a pass.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from system0.errors import ValidationError
from system0.game.simulator import ACTIONS
from system0.interfaces.model_interface import AIModelInterface
from system0.testing.results import Check, SuiteResult
from system0.testing.states import feature_rows

__all__ = ["Scenario", "Step", "load_scenarios", "red_team_suite", "shipped_scenarios_dir"]

_STEP_KEYS = {"set", "must", "must_not"}
_FILE_KEYS = {"scenario", "about", "state", "steps"}


def shipped_scenarios_dir() -> Path:
    return Path(__file__).resolve().parent / "red_team"


@dataclass(frozen=True, slots=True)
class Step:
    state: dict[str, Any]
    must: frozenset[str]
    must_not: frozenset[str]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    about: str
    path: str
    steps: tuple[Step, ...]


def _actions(value: Any, where: str) -> frozenset[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError(f"{where}: expected an action name or a list of them, got {value!r}")
    unknown = sorted(set(names) - set(ACTIONS))
    if unknown:
        raise ValidationError(f"{where}: unknown actions {unknown}; known: {', '.join(ACTIONS)}")
    return frozenset(names)


def _apply(state: dict[str, Any], changes: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(state)
    for path, value in changes.items():
        node = out
        *heads, leaf = str(path).split(".")
        for h in heads:
            if not isinstance(node.get(h), dict):
                raise ValidationError(f"{where}: set {path!r}: {h!r} is not an object in the state")
            node = node[h]
        node[leaf] = value
    return out


def _scenario(path: Path) -> Scenario:
    where = os.fspath(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read scenario {where}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{where}: not YAML ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("state"), dict):
        raise ValidationError(f"{where}: a scenario is a mapping with a 'state' and 'steps'")
    extra = sorted(set(doc) - _FILE_KEYS)
    if extra:
        raise ValidationError(f"{where}: unknown keys {extra}; a scenario has {sorted(_FILE_KEYS)}")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ValidationError(f"{where}: 'steps' must be a non-empty list")
    state: dict[str, Any] = doc["state"]
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps):
        at = f"{where} step {i}"
        if not isinstance(raw, dict) or set(raw) - _STEP_KEYS:
            raise ValidationError(f"{at}: a step is a mapping of {sorted(_STEP_KEYS)}")
        changes = raw.get("set") or {}
        if not isinstance(changes, dict):
            raise ValidationError(f"{at}: 'set' must map field paths to values")
        state = _apply(state, changes, at)
        must = _actions(raw.get("must", []), f"{at} must")
        must_not = _actions(raw.get("must_not", []), f"{at} must_not")
        if not must and not must_not:
            raise ValidationError(
                f"{at}: says neither 'must' nor 'must_not'; it would test nothing"
            )
        steps.append(Step(state, must, must_not))
    try:
        feature_rows([s.state for s in steps])
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    return Scenario(
        str(doc.get("scenario") or path.stem), str(doc.get("about", "")), where, tuple(steps)
    )


def load_scenarios(folder: str | os.PathLike[str]) -> list[Scenario]:
    """Every ``*.yaml`` / ``*.yml`` scenario in ``folder``, by file name; empty when none."""
    p = Path(folder)
    if not p.is_dir():
        raise ValidationError(
            f"red-team folder {os.fspath(folder)} does not exist or is not a folder"
        )
    files = sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    return [_scenario(f) for f in files]


def red_team_suite(model: AIModelInterface, folder: str | os.PathLike[str]) -> SuiteResult:
    scenarios = load_scenarios(folder)
    if not scenarios:
        check = Check(
            "scenarios present",
            False,
            f"{os.fspath(folder)} holds no *.yaml scenario: an empty red-team folder is not a pass",
        )
        return SuiteResult("red_team", [check], {"scenarios": []})
    checks: list[Check] = []
    rows: list[dict[str, Any]] = []
    for sc in scenarios:
        actions = np.asarray(model.infer(feature_rows([s.state for s in sc.steps]))).argmax(axis=1)
        broken: list[str] = []
        for i, (step, a) in enumerate(zip(sc.steps, actions, strict=True)):
            name = ACTIONS[int(a)]
            if step.must and name not in step.must:
                broken.append(f"step {i}: {name}, must be one of {sorted(step.must)}")
            if name in step.must_not:
                broken.append(f"step {i}: {name}, which must not follow")
        seq = " -> ".join(ACTIONS[int(a)] for a in actions)
        checks.append(Check(sc.name, not broken, "; ".join(broken) if broken else f"{seq}"))
        rows.append(
            {"scenario": sc.name, "file": Path(sc.path).name, "actions": seq, "passed": not broken}
        )
    return SuiteResult("red_team", checks, {"scenarios": rows})
