"""The one place serving code hands game states to an engine.

Every serving module calls :func:`submit_states` and never an engine method directly: it is
the engine's bytes path (``submit_many_bytes``), which decodes and featurizes the JSON or
msgpack bodies in Rust, queues them without a Python object per request, and refuses a tick
atomically with ``InvalidRequest``. The engine keeps the state validator for its other
entries (``submit`` of a dict), so the same contract holds on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.interfaces.inference_engine import EngineFuture, InferenceEngine
from system0.interfaces.model_interface import AIModelInterface

__all__ = ["StateEngine", "state_engine", "submit_states"]


class StateEngine(Protocol):
    """What a deployment slot needs of an engine (an ``InferenceEngine``, or a replica set)."""

    @property
    def buckets(self) -> tuple[int, ...]: ...

    @property
    def max_batch(self) -> int: ...

    def submit_many_bytes(self, items: Sequence[bytes], budget: float) -> list[EngineFuture]: ...

    def warmup(self, rounds: int = 3) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


def submit_states(engine: StateEngine, items: Sequence[bytes], budget: float) -> list[EngineFuture]:
    """Submit one tick of GameState JSON/msgpack bodies; one future per item, in order.

    Raises ``InvalidRequest`` (the whole tick refused, ``index`` naming the first bad item),
    ``Overloaded``, ``Closed``; ``CircuitOpen`` reaches a future only without a fallback.
    """
    return engine.submit_many_bytes(items, budget)


def state_engine(model: AIModelInterface, **options: Any) -> InferenceEngine:
    """An engine over GameState requests for ``model``: the state validator, the scripted
    player as the deterministic fallback, and ``options`` for the rest (``max_batch``,
    ``buckets``, ``name``...). The default ``engine_factory`` of a deployment."""
    options.setdefault("fallback", heuristic_probabilities)
    options.setdefault("name", model.name)
    return InferenceEngine(model, validator=state_validator(), **options)
