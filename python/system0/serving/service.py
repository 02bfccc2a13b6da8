"""The protocol between the HTTP server and what serves a model (a deployment)."""

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
    """One answer of a served model."""

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
    """A named model as the server sees it."""

    name: str

    def submit(self, items: Sequence[bytes], budget: float) -> list[Future[ServedAnswer]]:
        """GameState JSON/msgpack bodies; raises InvalidRequest, Overloaded, CircuitOpen,
        Draining(Closed)."""
        ...

    def ready(self) -> bool: ...

    def describe(self) -> dict[str, Any]:
        """``{"name", "active", "standby", "versions": [{version, content_hash, config_hash,
        state}]}``."""
        ...

    def deploy(self, version: str) -> None: ...

    def promote(self) -> None: ...

    def rollback(self) -> None: ...

    def drain(self) -> None: ...
