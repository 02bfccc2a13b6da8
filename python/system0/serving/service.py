"""The serving contract: what the HTTP server codes against.

A ``ModelService`` answers ticks of game states with one model version per call, and exposes
the blue/green lifecycle (deploy, promote, rollback, drain). ``serving.deployment.Deployment``
implements it; the HTTP layer (``serving.app``) only sees this protocol, so a replica set or a
Ray Serve handle can stand behind the same routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["ModelService", "ServedAnswer"]


@dataclass(frozen=True, slots=True)
class ServedAnswer:
    """One answered game state: the engine's result plus the version and guard that shaped it."""

    action: int
    outputs: npt.NDArray[np.float32]
    fallback: bool
    reason: str | None
    version: str  # the version that answered (a tick is answered by one version)
    guard: str | None  # name of the guard rule that vetoed the model's action, if any
    batch_id: int
    row: int
    queue_wait_ns: int
    model_ns: int
    total_ns: int


class ModelService(Protocol):
    """A named model served with blue/green slots; every method is thread-safe."""

    name: str

    def submit(self, items: Sequence[bytes], budget: float) -> list[Future[ServedAnswer]]:
        """Answer GameState JSON/msgpack bodies, all by one version.

        Raises InvalidRequest, Overloaded, CircuitOpen, Draining(Closed).
        """
        ...

    def ready(self) -> bool:
        """True once a warm-up inference through the real path succeeded on the active slot."""
        ...

    def describe(self) -> dict[str, Any]:
        """The served state.

        ``{"name", "active", "standby",
        "versions": [{version, content_hash, config_hash, state}]}``.
        """
        ...

    def deploy(self, version: str) -> None:
        """Load into the idle slot, warm, golden check, gate check; no switch."""
        ...

    def promote(self) -> None:
        """Atomic switch to the idle slot (the previous version stays warm)."""
        ...

    def rollback(self) -> None:
        """Atomic switch back to the previous version (< 10 ms)."""
        ...

    def drain(self) -> None:
        """Stop admitting (Draining), finish in-flight work."""
        ...
