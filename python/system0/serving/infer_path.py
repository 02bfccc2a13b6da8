"""The infer route's work, and the fast path that serves it under the framework.

:class:`InferPath` answers ``POST /v1/models/{name}/infer`` (see :mod:`.app` for what it
promises). It runs as a plain ASGI layer in front of FastAPI (:class:`FastInfer`): the route
is the server's hot path, and FastAPI's per-request dependency solving, exit stacks and
parameter validation cost more than the codec and the engine together; FastAPI keeps the
route's declaration, which documents it in the spec, and answers every other route.

Answers come back from the engine's batcher thread. Each one waking the event loop on its
own (``asyncio.wrap_future``: one self-pipe write per request) would make a batch of 32
cost 32 wake-ups; :class:`Completions` hands them over in bulk instead, one wake-up for
all that finished since the loop last looked.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import Future
from typing import Any

from system0.core import telemetry
from system0.interfaces.inference_engine import InvalidRequest
from system0.serving.observe import ModelObserver
from system0.serving.refusals import Refused, refusal
from system0.serving.service import ModelService, ServedAnswer
from system0.serving.wire import BadHeader, Limits, answer_json, budget_from_headers, split_body

__all__ = ["Completions", "FastInfer", "InferPath", "read_limited"]

JSON_HEADERS = [(b"content-type", b"application/json")]
_PREFIX, _SUFFIX = "/v1/models/", "/infer"
_WANTED = (b"content-length", b"content-type", b"x-request-deadline-ms", b"grpc-timeout")


class Completions:
    """Moves finished engine futures onto one event loop in bulk (see the module doc)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._done: deque[tuple[Future[ServedAnswer], asyncio.Future[ServedAnswer]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def wrap(self, fut: Future[ServedAnswer]) -> asyncio.Future[ServedAnswer]:
        waiter: asyncio.Future[ServedAnswer] = self.loop.create_future()
        fut.add_done_callback(lambda f: self._finished(f, waiter))
        return waiter

    def _finished(self, fut: Future[ServedAnswer], waiter: asyncio.Future[ServedAnswer]) -> None:
        self._done.append((fut, waiter))
        with self._lock:
            if self._scheduled:
                return  # a drain is on its way and will see this one
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            self._scheduled = False  # from here on, a new completion schedules a new drain
        done = self._done
        while done:
            fut, waiter = done.popleft()
            if waiter.done():  # its request was cancelled (the client went away)
                continue
            exc = fut.exception()
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(fut.result())


async def read_limited(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit``: by its
    Content-Length before a byte is read, or while it streams in."""
    too_big = Refused(
        413,
        "body_too_large",
        f"the body is over the limit of {limit} bytes; split the tick into smaller requests",
    )
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "bad_header", f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise too_big
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_big
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class InferPath:
    """The infer route over ``models`` (by name)."""

    def __init__(self, models: Mapping[str, ModelService], limits: Limits) -> None:
        self.models = models
        self.limits = limits
        self.observers = {name: ModelObserver(name) for name in models}
        self._completions: Completions | None = None

    def _wrap(self, fut: Future[ServedAnswer]) -> asyncio.Future[ServedAnswer]:
        c = self._completions
        if c is None or c.loop is not asyncio.get_running_loop():
            c = self._completions = Completions(asyncio.get_running_loop())
        return c.wrap(fut)

    async def answer(
        self, name: str, headers: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, extra headers and JSON body of one infer request."""
        start = telemetry.now_ns()
        obs = self.observers.get(name)
        answers: list[ServedAnswer] = []
        status = 200
        try:
            svc = self.models.get(name)
            if svc is None:
                raise Refused(
                    404, "not_found", f"no model {name!r} is served here; served: "
                    f"{sorted(self.models)}"
                )  # fmt: skip
            lim = self.limits
            try:
                budget = budget_from_headers(headers, lim)
            except BadHeader as exc:
                raise refusal(exc) from None
            body = await read_limited(chunks, headers.get("content-length"), lim.max_body_bytes)
            try:
                items, tick = split_body(body, headers.get("content-type"), lim)
            except InvalidRequest as exc:
                raise refusal(exc) from None
            left = budget - (telemetry.now_ns() - start) / 1e9
            if left <= 0:
                # admission, as the engine's: the server could not even queue it in time, so
                # it is refused (busy: retry) and never runs; 504 is for a queued request
                # whose deadline passed while it waited
                raise Refused(
                    429,
                    "overloaded",
                    f"the budget of {budget * 1e3:.3f} ms was spent reading and decoding the "
                    "body, before the request could be queued; it was not run: retry with a "
                    "larger budget",
                    retry_after=budget,
                )
            try:
                waiters = [self._wrap(f) for f in svc.submit(items, left)]
                for w in waiters:
                    answers.append(await w)
            except Exception as exc:
                raise refusal(exc) from None
            return 200, {}, answer_json(name, answers, tick)
        except Refused as r:
            status = r.status
            return r.status, r.headers(), r.body()
        finally:
            if obs is not None:
                obs.observe(status, start, answers)


ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class FastInfer:
    """ASGI layer: ``POST /v1/models/{name}/infer`` straight to :class:`InferPath`, every
    other request to the app it wraps."""

    def __init__(self, app: ASGIApp, path: InferPath) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        p: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not p.startswith(_PREFIX)
            or not p.endswith(_SUFFIX)
            or len(p) <= len(_PREFIX) + len(_SUFFIX)
            or "/" in p[len(_PREFIX) : -len(_SUFFIX)]
        ):
            await self.app(scope, receive, send)
            return
        name = p[len(_PREFIX) : -len(_SUFFIX)]
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            if k in _WANTED:
                headers[k.decode("latin-1")] = v.decode("latin-1")

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        status, extra, body = await self.path.answer(name, headers, chunks())
        out = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        out.extend((k.lower().encode(), v.encode()) for k, v in extra.items())
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
