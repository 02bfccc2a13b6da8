"""Scale-out on Ray Serve: the same engine as a Ray Serve deployment (the ``ray`` extra).

Ray places and scales the replicas; everything that decides an answer stays in the engine:
batching (no ``@serve.batch`` on top: the engine batches already, and a second batcher would
only add its wait to the engine's), deadlines and admission, the breaker and its fallback,
telemetry. Ray keeps no previous version of a deployment warm, so blue/green and rollback
stay in system0's deployment layer, which can point at a Ray application per version.

The mapping of system0's settings (:class:`RayServeSettings`) to Ray's:

* :class:`~system0.serving.autoscaler.AutoscalingConfig` -> Ray's ``autoscaling_config``:
  ``min_replicas``, ``max_replicas`` (and ``initial_replicas`` = ``min_replicas``),
  ``target_ongoing_requests``, ``upscale_delay_s``, ``downscale_delay_s``. Ray has no
  hysteresis band, cooldowns or latency target: its delays are its whole defence against
  swinging, so give it the longer ``downscale_delay_s``;
* ``max_queued_requests`` (required, > 0): each caller (Ray's proxy or a handle) queues at
  most this many requests for the deployment and refuses the next one at once, instead of
  queueing without bound; over HTTP the refusal is a 503 with ``Retry-After``
  (``retry_after_s``, through Ray's ``backpressure_config``); through a
  :class:`RayServeClient` it is :class:`system0.errors.Overloaded` with ``retry_after``;
* ``max_ongoing_requests`` per replica, at least ``target_ongoing_requests``;
* ``check_health()`` (Ray calls it every ``health_check_period_s``) runs a real inference of
  a real GameState through the engine; a replica whose model no longer answers (its answer
  comes from the fallback) is reported unhealthy and Ray replaces it.

Answers: over HTTP (``POST`` to the route prefix, a GameState object or a JSON array of
them, ``X-Request-Deadline-Ms`` as the budget) the body is a JSON list of answers; refusals
map as the server's do: 422 with the codec's reason codes, 429 + ``Retry-After`` for the
engine's ``Overloaded``, 503 + ``Retry-After`` for an open breaker or a closed engine, 504
for a deadline passed. Through a handle, :class:`RayServeClient` returns the engine's
:class:`~system0.interfaces.inference_engine.InferenceResult` objects and raises the
engine's typed errors, rebuilt with their fields (Ray would carry only the message).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from system0.errors import (
    CircuitOpen,
    Closed,
    DeadlineExceeded,
    Error,
    InternalError,
    Overloaded,
    Unavailable,
)
from system0.interfaces.inference_engine import InferenceEngine, InferenceResult, InvalidRequest
from system0.serving.autoscaler import AutoscalingConfig

__all__ = [
    "EngineDeployment",
    "PendingAnswer",
    "RayServeClient",
    "RayServeSettings",
    "deployment_options",
    "engine_application",
    "http_refusal",
    "ray_autoscaling_config",
]

DEADLINE_HEADER = "x-request-deadline-ms"
Outcome = tuple[str, Any]  # ("ok", [InferenceResult, ...]) or ("error", {fields})


@dataclass(frozen=True, slots=True)
class RayServeSettings:
    """How a deployment runs on Ray (see the module doc for the mapping).

    ``budget_s``: the budget of a request that names none; ``num_cpus``: Ray CPUs reserved
    per replica (fractions allowed: on a small machine several replicas share a core).
    """

    autoscaling: AutoscalingConfig = field(default_factory=AutoscalingConfig)
    max_ongoing_requests: int = 32
    max_queued_requests: int = 64
    retry_after_s: float = 1.0
    budget_s: float = 0.5
    health_check_period_s: float = 10.0
    health_check_timeout_s: float = 5.0
    graceful_shutdown_timeout_s: float = 10.0
    num_cpus: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_ongoing_requests", "max_queued_requests"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(
                    f"RayServeSettings.{name} must be an int >= 1 (bounded: Ray refuses "
                    f"instead of queueing without bound), got {value!r}"
                )
        if self.autoscaling.target_ongoing_requests > self.max_ongoing_requests:
            raise ValueError(
                "RayServeSettings.max_ongoing_requests "
                f"({self.max_ongoing_requests}) must be at least the autoscaling "
                f"target_ongoing_requests ({self.autoscaling.target_ongoing_requests})"
            )
        for name in (
            "retry_after_s",
            "budget_s",
            "health_check_period_s",
            "health_check_timeout_s",
            "graceful_shutdown_timeout_s",
            "num_cpus",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"RayServeSettings.{name} must be finite and >= 0, got {value!r}")
        if self.budget_s == 0:
            raise ValueError("RayServeSettings.budget_s must be > 0 seconds")


def ray_autoscaling_config(cfg: AutoscalingConfig) -> dict[str, Any]:
    """system0's autoscaling settings as Ray Serve's ``autoscaling_config``."""
    return {
        "min_replicas": cfg.min_replicas,
        "initial_replicas": cfg.min_replicas,
        "max_replicas": cfg.max_replicas,
        "target_ongoing_requests": cfg.target_ongoing_requests,
        "upscale_delay_s": cfg.upscale_delay_s,
        "downscale_delay_s": cfg.downscale_delay_s,
    }


def deployment_options(settings: RayServeSettings) -> dict[str, Any]:
    """The keyword arguments of ``serve.deployment`` for ``settings``."""
    return {
        "autoscaling_config": ray_autoscaling_config(settings.autoscaling),
        "max_ongoing_requests": settings.max_ongoing_requests,
        "max_queued_requests": settings.max_queued_requests,
        "backpressure_config": {"status_code": 503, "retry_after_s": settings.retry_after_s},
        "health_check_period_s": settings.health_check_period_s,
        "health_check_timeout_s": settings.health_check_timeout_s,
        "graceful_shutdown_timeout_s": settings.graceful_shutdown_timeout_s,
        "ray_actor_options": {"num_cpus": settings.num_cpus},
    }


def _refusal(exc: Error) -> dict[str, Any]:
    """An engine refusal as plain fields: Ray carries an exception's message only."""
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "retry_after": getattr(exc, "retry_after", None),
        "depth": getattr(exc, "depth", None),
        "reasons": list(getattr(exc, "reasons", ())),
        "index": getattr(exc, "index", None),
    }


def _retry_after(seconds: float | None, floor: float) -> str:
    """``Retry-After`` is whole seconds (RFC 9110): round up, at least ``floor``."""
    return str(max(1, math.ceil(max(seconds or 0.0, floor))))


def http_refusal(refusal: dict[str, Any], retry_floor_s: float) -> tuple[int, dict[str, str]]:
    """The HTTP status and headers of an engine refusal (as :func:`_refusal` gives it)."""
    kind = refusal["type"]
    if kind == "InvalidRequest":
        return 422, {}
    if kind == "Overloaded":
        return 429, {"Retry-After": _retry_after(refusal["retry_after"], retry_floor_s)}
    if kind in ("CircuitOpen", "Closed"):
        return 503, {"Retry-After": _retry_after(refusal["retry_after"], retry_floor_s)}
    if kind == "DeadlineExceeded":
        return 504, {}
    return 500, {}


def _answer_json(r: InferenceResult) -> dict[str, Any]:
    return {
        "action": r.action,
        "outputs": [float(v) for v in r.outputs],
        "fallback": r.fallback,
        "reason": r.reason,
        "batch_size": r.batch_size,
        "total_ns": r.total_ns,
    }


class EngineDeployment:
    """The Ray Serve replica: one engine built by ``factory`` in the replica's process.

    ``engine_application`` wraps it with ``serve.deployment``; it is a plain class so that
    it can be built and checked without Ray too.
    """

    def __init__(
        self,
        factory: Callable[[str], InferenceEngine],
        name: str,
        budget_s: float = 0.5,
        retry_after_s: float = 1.0,
    ) -> None:
        self.name = f"{name}#{_replica_id()}"
        self.engine = factory(self.name)
        self.engine.warmup()
        self.budget_s = budget_s
        self.retry_after_s = retry_after_s
        self._probe = _probe_state()

    async def infer(self, states: Sequence[Any], budget_s: float | None = None) -> Outcome:
        """Answer a tick (GameState dicts or JSON/msgpack bytes): ``("ok", results)``, or
        ``("error", fields)`` that :class:`RayServeClient` raises as the typed error."""
        try:
            futures = self.engine.submit_many(list(states), budget_s or self.budget_s)
            results = [await f for f in futures]
        except (Overloaded, InvalidRequest, DeadlineExceeded, CircuitOpen, Closed) as exc:
            return "error", _refusal(exc)
        return "ok", results

    async def __call__(self, request: Any) -> Any:
        """The HTTP route: a GameState or a JSON array of them; answers as JSON."""
        from starlette.responses import JSONResponse

        body = await request.body()
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc}"}, status_code=422)
        states = parsed if isinstance(parsed, list) else [parsed]
        budget = self.budget_s
        header = request.headers.get(DEADLINE_HEADER)
        if header is not None:
            try:
                budget = float(header) / 1000.0
                if not (math.isfinite(budget) and budget > 0):
                    raise ValueError(header)
            except ValueError:
                msg = f"{DEADLINE_HEADER} must be a positive number of milliseconds: {header!r}"
                return JSONResponse({"error": msg}, status_code=422)
        kind, value = await self.infer(states, budget)
        if kind == "ok":
            return JSONResponse([_answer_json(r) for r in value])
        status, headers = http_refusal(value, self.retry_after_s)
        return JSONResponse({"error": value}, status_code=status, headers=headers)

    def check_health(self) -> None:
        """Ray's health check: one real GameState through the engine, answered by the model
        (an answer from the fallback means the model does not answer: unhealthy). A replica
        too busy to admit the probe is alive, so ``Overloaded`` passes."""
        try:
            result = self.engine.infer(self._probe, max(self.budget_s, 1.0))
        except Overloaded:
            return
        if result.fallback:
            raise Unavailable(
                f"{self.name}: the health probe was answered by the fallback ({result.reason}); "
                "the model does not answer"
            )

    def __del__(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()


def _replica_id() -> str:
    """Ray's id of this replica; ``local`` outside a Ray replica."""
    try:
        from ray import serve

        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # not in a replica (a test builds the class directly)
        return "local"


def _probe_state() -> dict[str, Any]:
    """A valid GameState for the health probe: the simulator's first record."""
    from system0.game.simulator import MatchSimulator

    return dict(MatchSimulator(0).observe().states[0])


def engine_application(
    factory: Callable[[str], InferenceEngine],
    *,
    name: str = "policy",
    settings: RayServeSettings | None = None,
) -> Any:
    """A Ray Serve application (pass it to ``serve.run``) serving ``factory``'s engine.

    ``factory`` must pickle (a :class:`~system0.serving.factory.PolicyEngineFactory`, or a
    module-level function): Ray builds the engine in each replica's own process.
    """
    from ray import serve

    cfg = settings or RayServeSettings()
    deployment = serve.deployment(EngineDeployment, name=name, **deployment_options(cfg))
    return deployment.bind(factory, name, cfg.budget_s, cfg.retry_after_s)


_ERRORS: dict[str, Callable[[dict[str, Any]], Error]] = {
    "Overloaded": lambda f: Overloaded(f["message"], f["depth"] or 0, f["retry_after"] or 0.0),
    "InvalidRequest": lambda f: InvalidRequest(f["message"], f["reasons"], index=f["index"]),
    "DeadlineExceeded": lambda f: DeadlineExceeded(f["message"]),
    "CircuitOpen": lambda f: CircuitOpen(f["message"], f["retry_after"] or 0.0),
    "Closed": lambda f: Closed(f["message"]),
}


class RayServeClient:
    """Calls a deployment through its ``DeploymentHandle`` with the engine's contract:
    results are ``InferenceResult`` objects, refusals the engine's typed errors, and Ray's
    own refusal of a full caller queue is ``Overloaded`` (with ``retry_after_s``)."""

    def __init__(self, handle: Any, *, retry_after_s: float = 1.0) -> None:
        self.handle = handle
        self.retry_after_s = retry_after_s

    def infer(
        self, states: Sequence[Any], budget_s: float, *, timeout_s: float | None = None
    ) -> list[InferenceResult]:
        """Blocking: the answers of a tick, or the typed error."""
        return self.submit(states, budget_s).result(timeout_s)

    def submit(self, states: Sequence[Any], budget_s: float) -> PendingAnswer:
        """Send a tick now; ``.result()`` on what it returns waits for the answers."""
        return PendingAnswer(self.handle.infer.remote(list(states), budget_s), self.retry_after_s)


class PendingAnswer:
    """A tick sent through a handle; :meth:`result` gives the answers or the typed error."""

    def __init__(self, response: Any, retry_after_s: float) -> None:
        self._response = response
        self._retry_after_s = retry_after_s

    def result(self, timeout_s: float | None = None) -> list[InferenceResult]:
        from ray.serve.exceptions import BackPressureError

        try:
            kind, value = self._response.result(timeout_s=timeout_s)
        except BackPressureError as exc:
            wait = exc.retry_after_s or self._retry_after_s
            raise Overloaded(
                f"Ray refused the request: {exc}; retry after {wait:g} s", retry_after=wait
            ) from exc
        if kind == "ok":
            results: list[InferenceResult] = value
            return results
        build = _ERRORS.get(value["type"])
        if build is None:
            raise InternalError(f"the deployment refused with {value['type']}: {value['message']}")
        raise build(value)
