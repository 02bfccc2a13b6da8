"""``PolicyEngineFactory``: builds an engine for a policy model, the same way in every process.

A :class:`~system0.serving.balancer.ReplicaSet` calls its factory once per replica; a Ray
Serve deployment calls it once in each replica's own process. So the factory is a small
picklable value (a frozen dataclass, not a closure): which weights, which backend, the
engine's options. Each engine it builds serves GameState requests under the contract
(``system0.game.contract.state_validator``) with the deterministic heuristic as fallback.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.game.policy import BACKENDS, load_policy
from system0.interfaces.inference_engine import InferenceEngine
from system0.interfaces.model_interface import NumpyModelInterface

__all__ = ["PolicyEngineFactory"]


@dataclass(frozen=True, slots=True)
class PolicyEngineFactory:
    """``factory(name) -> InferenceEngine`` over the policy at ``weights`` (a safetensors
    file, e.g. a registry version's ``weights.safetensors``; None: the shipped policy) on
    ``backend``; the other fields are the engine's options of the same names."""

    weights: str | None = None
    backend: str = "numpy"
    max_batch: int = 32
    max_wait: float = 0.002
    queue_capacity: int = 1024
    headroom: float = 0.9

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.weights is not None and not pathlib.Path(self.weights).is_file():
            raise FileNotFoundError(
                f"no weights file at {self.weights}; pass a safetensors file (or None for the "
                "shipped policy)"
            )
        if self.weights is not None and self.backend != "numpy":
            raise ValueError("weights files load on the numpy backend here; use backend='numpy'")

    def __call__(self, name: str) -> InferenceEngine:
        model = (
            load_policy(self.backend)
            if self.weights is None
            else NumpyModelInterface(name=name).load(self.weights)
        )
        return InferenceEngine(
            model,
            max_batch=self.max_batch,
            max_wait=self.max_wait,
            queue_capacity=self.queue_capacity,
            headroom=self.headroom,
            validator=state_validator(),
            fallback=heuristic_probabilities,
            name=name,
        )
