"""What the replica, autoscaler, alert and Ray tests share: a real engine over the shipped
policy and real game states (imported by name: tests/serving is on sys.path)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_actions, heuristic_probabilities
from system0.game.policy import load_policy
from system0.game.simulator import MatchSimulator
from system0.interfaces.inference_engine import InferenceEngine
from system0.interfaces.model_interface import AIModelInterface, NumpyModelInterface


class SlowPolicy(NumpyModelInterface):
    """The shipped policy, plus ``delay`` seconds of GIL-free wait per batch: a heavier
    model's cost, so that replicas matter on a 2-core machine."""

    def __init__(self, delay: float) -> None:
        super().__init__(name="slow-policy")
        self.delay = delay
        source = load_policy("numpy")
        assert isinstance(source, NumpyModelInterface)
        self.load(source.mlp)

    def infer(self, x: npt.NDArray[np.float32]) -> Any:
        time.sleep(self.delay)
        return super().infer(x)


def policy(delay: float = 0.0) -> AIModelInterface:
    return SlowPolicy(delay) if delay > 0 else load_policy("numpy")


def engine_factory(
    delay: float = 0.0, engine: type[InferenceEngine] = InferenceEngine, **options: Any
) -> Callable[[str], InferenceEngine]:
    """``factory(name)`` for a ReplicaSet: the policy behind the GameState contract."""
    opts: dict[str, Any] = {"max_batch": 8, "max_wait": 0.001, **options}

    def build(name: str) -> InferenceEngine:
        return engine(
            policy(delay),
            validator=state_validator(),
            fallback=heuristic_probabilities,
            name=name,
            **opts,
        )

    return build


def states(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """``n`` valid GameState dicts from the simulator."""
    sim = MatchSimulator(seed)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        tick = sim.observe()
        out.extend(copy.deepcopy(s) for s in tick.states)
        sim.step(heuristic_actions(tick.features))
    return out[:n]
