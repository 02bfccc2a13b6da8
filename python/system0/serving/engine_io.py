"""The one place serving code hands GameState bodies to an engine.

Today the engine takes a tick through ``submit_many`` with the state validator (the codec
decodes each body in Rust and refuses the whole tick atomically); once the engine grows its
bytes path (``submit_many_bytes``) this function switches to it and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from system0.interfaces.inference_engine import InferenceEngine, InferenceResult

__all__ = ["submit_states"]


def submit_states(
    engine: InferenceEngine, items: Sequence[bytes], budget: float
) -> list[Future[InferenceResult]]:
    """Submit GameState JSON or msgpack bodies (one per state) as one tick."""
    return engine.submit_many(items if isinstance(items, list) else list(items), budget)
