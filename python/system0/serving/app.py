"""The HTTP face of the model server: ``create_app(services, ...)`` builds the FastAPI app.

Routes (the spec is served at ``/openapi.json``, the docs at ``/docs``):

* ``POST /v1/models/{name}/infer``: one GameState or a tick (see :mod:`.wire`); the body is
  read raw, under the size limit, and decoded by the Rust codec. Its budget comes from
  ``X-Request-Deadline-Ms`` or ``grpc-timeout`` and runs from the moment the request
  arrived: time spent reading the body is spent from it, and a request with nothing left
  is answered 504 and never runs. Refusals are answered at once: 422 (the codec's reason
  codes), 413, 429 (queue full, or the budget cannot be met) and 503 (breaker open,
  draining) with ``Retry-After``.
* ``GET /v1/models``: every model's versions, hashes and states; ``GET /v1/stats``: what the
  dashboard plots; ``GET /dashboard``: the dashboard.
* ``GET /healthz`` (the process answers), ``GET /readyz`` (every model has a warmed active
  version), ``GET /metrics`` (Prometheus text of the telemetry registry).
* ``POST /v1/models/{name}/deploy|promote|rollback|drain``: admin, RBAC token required
  (:mod:`.admin`).

The handlers never block the event loop on the model: ``submit`` only queues (the engine's
batcher thread runs the model) and the answers are awaited; the admin operations, which
load and warm weights, run on a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from system0.core import telemetry
from system0.errors import AccessDenied
from system0.serving.admin import ADMIN_ACTIONS, AdminAuth
from system0.serving.infer_path import FastInfer, InferPath, read_limited
from system0.serving.openapi import game_state_schemas, infer_openapi, responses
from system0.serving.refusals import Refused, refusal
from system0.serving.service import ModelService
from system0.serving.wire import Limits

__all__ = ["AlertSource", "Finisher", "create_app"]

JSON = "application/json"


class _AlertLike(Protocol):
    def as_json(self) -> dict[str, Any]: ...


class AlertSource(Protocol):
    """What the dashboard shows of alerting: the alerts firing now (``AlertManager.active()``
    of ``system0.serving.alerts``: objects with ``as_json()``, or plain mappings)."""

    def active(self) -> Sequence[_AlertLike | Mapping[str, Any]]: ...


class Finisher(Protocol):
    """The flight recording: finished (its run folders written) when the app shuts down."""

    def finish(self) -> object: ...


def create_app(
    services: Mapping[str, ModelService] | Sequence[ModelService],
    *,
    auth: AdminAuth | None = None,
    limits: Limits | None = None,
    recorder: Finisher | None = None,
    alerts: AlertSource | None = None,
) -> FastAPI:
    """The server's app over ``services`` (by name). ``auth``: who may call the admin routes
    (None: nobody, every admin call is 403); ``limits``: body size, tick size, budgets;
    ``recorder``: finished when the app shuts down; ``alerts``: shown on the dashboard."""
    models: dict[str, ModelService] = (
        dict(services) if isinstance(services, Mapping) else {s.name: s for s in services}
    )
    lim = limits or Limits()
    path = InferPath(models, lim)
    observers = path.observers

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if recorder is not None:
            await run_in_threadpool(recorder.finish)

    app = FastAPI(
        title="system0 model server",
        version="1",
        description="Game-AI policy inference: deadlines, backpressure, blue/green rollouts.",
        lifespan=lifespan,
    )

    def model(name: str) -> ModelService:
        svc = models.get(name)
        if svc is None:
            raise Refused(
                404, "not_found", f"no model {name!r} is served here; served: {sorted(models)}"
            )
        return svc

    def respond(r: Refused) -> Response:
        return Response(r.body(), r.status, r.headers(), media_type=JSON)

    @app.post(
        "/v1/models/{name}/infer",
        summary="answer one GameState or a tick of them",
        openapi_extra=infer_openapi(lim),
        responses={
            200: {
                "description": "the answers",
                "content": {
                    JSON: {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Answer"},
                                {"$ref": "#/components/schemas/TickAnswer"},
                            ]
                        }
                    }
                },
            },
            **responses(400, 404, 413, 422, 429, 503, 504),
        },
    )
    async def infer(name: str, request: Request) -> Response:
        # served by the FastInfer layer in front of the app; this declaration documents
        # the route in the spec and answers the same way should a request reach it
        status, headers, content = await path.answer(name, request.headers, request.stream())
        return Response(content, status, headers, media_type=JSON)

    @app.get("/v1/models", summary="every model: its versions, hashes and states")
    async def list_models() -> dict[str, Any]:
        return {"models": [svc.describe() for svc in models.values()]}

    @app.get("/healthz", summary="liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="readiness: every model has an active version that answered a warm-up",
        responses=responses(503),
    )
    async def readyz() -> Response:
        waiting = [name for name, svc in models.items() if not svc.ready()]
        if waiting:
            return respond(
                Refused(
                    503, "not_ready", f"not ready: {', '.join(sorted(waiting))}", retry_after=1.0
                )
            )
        return Response(b'{"status":"ready"}', media_type=JSON)

    @app.get(
        "/metrics",
        summary="Prometheus text exposition of the telemetry registry",
        response_class=PlainTextResponse,
    )
    async def metrics() -> Response:
        text = await run_in_threadpool(telemetry.render_prometheus)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/stats", summary="what the dashboard plots, now")
    async def stats() -> dict[str, Any]:
        now = telemetry.now_ns()
        out: dict[str, Any] = {"t_ns": now, "models": {}, "alerts": []}
        for name, svc in models.items():
            d = svc.describe()
            out["models"][name] = {
                "ready": svc.ready(),
                "active": d.get("active"),
                "standby": d.get("standby"),
                "queue_depth": d.get("queue_depth"),
                "breaker": d.get("breaker"),
                "latency_ns": observers[name].window(now),
                **observers[name].counts(),
            }
        if alerts is not None:
            out["alerts"] = [
                dict(a) if isinstance(a, Mapping) else a.as_json() for a in alerts.active()
            ]
        return out

    @app.get(
        "/dashboard",
        summary="the live dashboard (one page, no build step)",
        response_class=HTMLResponse,
    )
    async def dashboard() -> Response:
        page = resources.files("system0.serving").joinpath("dashboard.html").read_bytes()
        return Response(page, media_type="text/html; charset=utf-8")

    for action in ADMIN_ACTIONS:
        _admin_route(app, action, model, auth)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            spec.setdefault("components", {}).setdefault("schemas", {}).update(game_state_schemas())
            _name_the_models(spec, sorted(models))
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(FastInfer, path=path)
    return app


def _name_the_models(spec: dict[str, Any], names: list[str]) -> None:
    """Say in the spec which model names are served (an enum on every ``{name}``), so a
    client, and a fuzzer, knows the names that reach a model."""
    for item in spec.get("paths", {}).values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param.get("name") == "name":
                    param["schema"] = {"type": "string", "enum": names, "title": "Name"}


def _admin_route(
    app: FastAPI,
    action: str,
    model: Callable[[str], ModelService],
    auth: AdminAuth | None,
) -> None:
    extra: dict[str, Any] = {
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": False,
                "description": "Bearer <admin token> (system0.security TokenIssuer)",
                "schema": {"type": "string"},
            }
        ]
    }
    if action == "deploy":
        extra["requestBody"] = {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["version"],
                        "properties": {"version": {"type": "string", "minLength": 1}},
                    }
                }
            },
        }

    async def handler(name: str, request: Request) -> Response:
        try:
            svc = model(name)
            if auth is None:
                raise Refused(
                    403, "forbidden", "this server takes no admin calls (started without --admin)"
                )
            try:
                subject = auth.authorize(request.headers.get("authorization"), name, action)
            except AccessDenied as exc:
                raise refusal(exc) from None
            call: Callable[[], object]
            if action == "deploy":
                declared = request.headers.get("content-length")
                body = await read_limited(request.stream(), declared, 64 * 1024)
                version = _deploy_version(body)
                call = lambda: svc.deploy(version)  # noqa: E731
            else:
                call = getattr(svc, action)
            try:
                await run_in_threadpool(call)
            except Exception as exc:
                raise refusal(exc) from None
            doc = {"ok": True, "action": action, "by": subject.id, "model": svc.describe()}
            return Response(json.dumps(doc).encode(), media_type=JSON)
        except Refused as r:
            return Response(r.body(), r.status, r.headers(), media_type=JSON)

    route: Callable[[Callable[..., Awaitable[Response]]], Any] = app.post(
        f"/v1/models/{{name}}/{action}",
        summary=f"admin: {action} (RBAC token, action {action!r} on model/<name>)",
        openapi_extra=extra,
        responses={200: {"description": "done"}, **responses(401, 403, 404, 409, 422)},
        name=f"admin_{action}",
    )
    route(handler)


def _deploy_version(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version:
        raise Refused(
            422, "invalid", 'the deploy body must be {"version": "<version>"}', reasons=["version"]
        )
    return version
