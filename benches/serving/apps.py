"""The three servers the serving benchmark compares, each run by
``system0.serving.server.run`` with the same settings (uvloop, httptools, no access log,
the startup heap frozen out of the collector's sight), one process each:
``python benches/serving/apps.py {system0,plain,batched} PORT``.

* ``system0``: the model server (``create_app`` over a ``PinnedService``: the codec reads
  the body, the engine batches, deadlines, admission, metrics and histograms on);
* ``plain``: what a user writes first, a FastAPI endpoint with a pydantic ``GameState`` body
  calling the same model once per request;
* ``batched``: the same endpoint with a naive batching loop (an asyncio queue drained into
  one model call per 2 ms or 32 requests), so that batching alone is not what the ratio
  shows.

All three answer the same JSON (the action and the outputs) from the same shipped policy
on numpy, and featurize the same way (the codec's feature layout).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import numpy as np

# at module level: FastAPI reads the endpoints' annotations (strings, under the future
# import) from this module's globals to find the pydantic body model
from system0.data.models import GameState

MAX_BATCH = 32
MAX_WAIT_S = 0.002


def _model() -> Any:
    from system0.game.policy import load_policy

    return load_policy("numpy")


def _answer(row: Any) -> dict[str, Any]:
    return {"action": int(row.argmax()), "outputs": row.tolist(), "fallback": False}


def plain_app() -> Any:
    from fastapi import FastAPI

    from system0.data.serialization import features_from_records

    model = _model()
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/models/policy/infer")
    async def infer(state: GameState) -> dict[str, Any]:
        x = features_from_records([state])
        return _answer(np.asarray(model.infer(x))[0])

    return app


def batched_app() -> Any:
    from fastapi import FastAPI

    from system0.data.serialization import features_from_records

    model = _model()
    queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()

    async def batcher() -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            until = loop.time() + MAX_WAIT_S
            while len(batch) < MAX_BATCH:
                left = until - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
            out = np.asarray(model.infer(np.concatenate([x for x, _ in batch])))
            for (_, fut), row in zip(batch, out, strict=True):
                if not fut.done():
                    fut.set_result(row)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        task = asyncio.create_task(batcher())
        yield
        task.cancel()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/models/policy/infer")
    async def infer(state: GameState) -> dict[str, Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await queue.put((features_from_records([state]), fut))
        return _answer(await fut)

    return app


def system0_app(queue_capacity: int = 1024) -> Any:
    from system0.game.policy import policy_weights_path
    from system0.serving.app import create_app
    from system0.serving.pinned import PinnedService

    svc = PinnedService.from_weights(
        "policy",
        policy_weights_path(),
        max_batch=MAX_BATCH,
        max_wait=MAX_WAIT_S,
        queue_capacity=queue_capacity,
    )
    svc.warm()
    return create_app([svc])


APPS = {"system0": system0_app, "plain": plain_app, "batched": batched_app}


def main(argv: list[str]) -> None:
    from system0.serving.server import run

    name, port = argv[0], int(argv[1])
    run(APPS[name](), "127.0.0.1", port)


if __name__ == "__main__":
    main(sys.argv[1:])
