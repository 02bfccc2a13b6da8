"""``PinnedService``: one model version served as it is, behind the :class:`ModelService`
protocol.

It is what ``system0 serve --weights FILE`` runs and what the server tests run against: a
real :class:`~system0.interfaces.inference_engine.InferenceEngine` over real weights, with
the GameState validator and the deterministic fallback. It holds exactly one version, so
there is nothing to switch to: ``deploy`` of another version, ``promote`` and ``rollback``
are refused with :class:`~system0.errors.NotFound` saying so (blue/green lives in
``system0.serving.deployment``). ``drain`` stops admission for good.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from system0.errors import Closed, Error, NotFound
from system0.interfaces.flight_recorder import FlightRecorder
from system0.interfaces.inference_engine import InferenceEngine, InferenceResult
from system0.interfaces.model_interface import AIModelInterface
from system0.serving.engine_io import submit_states
from system0.serving.service import ServedAnswer

if TYPE_CHECKING:
    from system0.serving.recording import ServedRecording

__all__ = ["WARMUP_STATE", "PinnedService"]

# a GameState that keeps the contract: the readiness probe sends it through the real path
WARMUP_STATE = (
    b'{"timestamp":"2024-05-01T12:00:00Z","champion":"Ahri","position":{"x":0.5,"y":0.5},'
    b'"health":1000.0,"mana":500.0,"cooldowns":{"q":0.0,"w":0.0,"e":0.0,"r":0.0,"d":0.0,'
    b'"f":0.0},"inventory":[],"vision_score":10.0,"gold_advantage":0.0}'
)


class PinnedService:
    """Serves one pinned version of ``model`` (see the module doc).

    ``version`` defaults to the first 12 hex digits of the weights' content hash; the
    engine options are those of :class:`InferenceEngine`. Call :meth:`warm` before
    traffic (``ready()`` is False until a warm-up inference through the real path
    succeeded), and :meth:`close` at the end.
    """

    def __init__(
        self,
        name: str,
        model: AIModelInterface,
        *,
        version: str | None = None,
        config_hash: str | None = None,
        max_batch: int = 32,
        max_wait: float = 0.002,
        queue_capacity: int = 1024,
        workers: int = 1,
        recorder: FlightRecorder | None = None,
    ) -> None:
        from system0.demo import fallback_policy
        from system0.game.contract import state_validator

        info = model.introspect()
        self.name = name
        self.content_hash = info.content_hash
        self.config_hash = config_hash
        self.version = version or info.content_hash.removeprefix("sha256:")[:12]
        n_actions = info.outputs[0].shape[-1] or 8
        buckets = tuple(getattr(model, "buckets", ()))
        self.engine = InferenceEngine(
            model,
            max_batch=min(max_batch, buckets[-1]) if buckets else max_batch,
            max_wait=max_wait,
            buckets=buckets,
            queue_capacity=queue_capacity,
            fallback=fallback_policy(n_actions),
            validator=state_validator(),
            workers=workers,
            name=f"{name}-{self.version}",
            recorder=recorder,
        )
        self._state = "loaded"
        self._lock = threading.Lock()

    @classmethod
    def from_weights(
        cls,
        name: str,
        weights: str | Path,
        *,
        backend: str = "numpy",
        recording: ServedRecording | None = None,
        **engine: Any,
    ) -> PinnedService:
        """The weights file ``weights`` (``save_mlp`` safetensors) served on ``backend``;
        with ``recording``, every decision goes to that version's flight recorder."""
        from system0.game.policy import load_policy

        path = Path(weights)
        on_cpu: dict[str, Any] = {"device": "cpu"} if backend == "torch" else {}
        model = load_policy(backend, weights=path, **on_cpu)
        info = model.introspect()
        version = engine.pop("version", None) or info.content_hash.removeprefix("sha256:")[:12]
        recorder = None
        if recording is not None:
            recorder = recording.recorder(name, version, path, info)
        return cls(name, model, version=version, recorder=recorder, **engine)

    # --- lifecycle ---------------------------------------------------------------------

    def warm(self, budget: float = 1.0) -> None:
        """Warm the engine on every batch size, then answer one real GameState through the
        serving path; only then is the service ready."""
        self.engine.warmup()
        answer = submit_states(self.engine, [WARMUP_STATE], budget)[0].result(timeout=budget * 10)
        if answer.fallback:
            raise Error(
                f"{self.name} {self.version}: the warm-up inference fell back "
                f"({answer.reason}); the model is not serving, check its weights"
            )
        with self._lock:
            if self._state == "loaded":
                self._state = "active"

    def ready(self) -> bool:
        return self._state == "active"

    def drain(self) -> None:
        """Refuse new requests from now on (503); what is queued is still answered."""
        with self._lock:
            self._state = "draining"

    def close(self) -> None:
        with self._lock:
            self._state = "closed"
        self.engine.close()

    # --- serving -----------------------------------------------------------------------

    def submit(self, items: Sequence[bytes], budget: float) -> list[Future[ServedAnswer]]:
        if self._state != "active":
            raise Closed(
                f"model {self.name!r} version {self.version} is {self._state}, not serving; "
                "retry on another replica or after a deploy"
            )
        version = self.version
        out: list[Future[ServedAnswer]] = []
        for fut in submit_states(self.engine, items, budget):
            served: Future[ServedAnswer] = Future()
            fut.add_done_callback(_relay(served, version))
            out.append(served)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "active": self.version if self._state == "active" else None,
            "standby": None,
            "versions": [
                {
                    "version": self.version,
                    "content_hash": self.content_hash,
                    "config_hash": self.config_hash,
                    "state": self._state,
                }
            ],
            "queue_depth": len(self.engine.queue),
            "breaker": str(self.engine.breaker.state),
        }

    # --- rollouts: one version, nothing to switch to ----------------------------------

    def deploy(self, version: str) -> None:
        if version != self.version:
            raise NotFound(
                f"model {self.name!r} serves the pinned version {self.version} only; "
                f"version {version!r} is unknown here (serve a registry to deploy versions)"
            )

    def promote(self) -> None:
        raise NotFound(f"model {self.name!r} has no standby version to promote; deploy one")

    def rollback(self) -> None:
        raise NotFound(f"model {self.name!r} has no previous version to roll back to")


def _relay(served: Future[ServedAnswer], version: str) -> Any:
    def done(fut: Future[InferenceResult]) -> None:
        exc = fut.exception()
        if exc is not None:
            served.set_exception(exc)
            return
        r = fut.result()
        served.set_result(
            ServedAnswer(
                r.action,
                r.outputs,
                r.fallback,
                r.reason,
                version,
                None,
                r.batch_id,
                r.row,
                r.queue_wait_ns,
                r.model_ns,
                r.total_ns,
            )
        )

    return done
