"""The one place serving code hands game states to an engine.

Every serving module calls :func:`submit_states` and never an engine method directly, so the
switch to the engine's bytes path (issue 13's ``submit_many_bytes``, decoding in Rust) is a
change of this one function. Today it is ``submit_many`` with the engine built over
:func:`system0.game.contract.state_validator`, which decodes JSON or msgpack bodies in Rust
too and refuses a tick atomically with ``InvalidRequest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.interfaces.inference_engine import InferenceEngine, InferenceResult
from system0.interfaces.model_interface import AIModelInterface

__all__ = ["StateEngine", "state_engine", "submit_states"]


class StateEngine(Protocol):
    """What a deployment slot needs of an engine (an ``InferenceEngine``, or a replica set)."""

    @property
    def buckets(self) -> tuple[int, ...]: ...

    @property
    def max_batch(self) -> int: ...

    def submit_many(self, requests: Any, budget: float) -> list[Future[InferenceResult]]: ...

    def warmup(self, rounds: int = 3) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


def submit_states(
    engine: StateEngine, items: Sequence[bytes], budget: float
) -> list[Future[InferenceResult]]:
    """Submit one tick of GameState JSON/msgpack bodies; one future per item, in order.

    Raises ``InvalidRequest`` (the whole tick refused, ``index`` naming the first bad item),
    ``Overloaded``, ``Closed``; ``CircuitOpen`` reaches a future only without a fallback.
    """
    return engine.submit_many(items if isinstance(items, list) else list(items), budget)


def state_engine(model: AIModelInterface, **options: Any) -> InferenceEngine:
    """An engine over GameState requests for ``model``: the state validator, the scripted
    player as the deterministic fallback, and ``options`` for the rest (``max_batch``,
    ``buckets``, ``name``...). The default ``engine_factory`` of a deployment."""
    options.setdefault("fallback", heuristic_probabilities)
    options.setdefault("name", model.name)
    return InferenceEngine(model, validator=state_validator(), **options)
