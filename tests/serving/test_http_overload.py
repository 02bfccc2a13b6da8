"""Backpressure over HTTP: the deadline header is the engine's budget, a request past its
deadline is never run (504), overload is answered at once (429 queue full or budget out of
reach, 503 draining or breaker open) with Retry-After."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from system0.errors import CircuitOpen, Overloaded
from system0.serving.refusals import refusal as _refusal
from system0.serving.wire import Limits, budget_from_headers

from .serving_fixtures import Admin, Served, body, serve, slow_service, states

LIMITS = Limits()


def test_deadline_headers_become_the_budget() -> None:
    assert budget_from_headers({}, LIMITS) == LIMITS.default_budget_s
    assert budget_from_headers({"x-request-deadline-ms": "25"}, LIMITS) == 0.025
    assert budget_from_headers({"grpc-timeout": "250m"}, LIMITS) == 0.25
    assert budget_from_headers({"grpc-timeout": "1S"}, LIMITS) == 1.0
    assert budget_from_headers({"grpc-timeout": "5000u"}, LIMITS) == pytest.approx(5e-3)
    # a larger deadline than the server allows is cut to its maximum
    assert budget_from_headers({"x-request-deadline-ms": "1e9"}, LIMITS) == LIMITS.max_budget_s
    assert budget_from_headers({"grpc-timeout": "2H"}, LIMITS) == LIMITS.max_budget_s


@pytest.fixture
def slow() -> object:
    svc, model = slow_service(max_batch=1, max_wait=0.0, queue_capacity=2)
    gen = serve(svc)
    s = next(gen)
    yield s, model
    gen.close()


def test_a_request_past_its_deadline_never_runs(slow: tuple[Served, object]) -> None:
    served, model = slow
    engine = served.service.engine
    model.delay = 0.3  # type: ignore[attr-defined]
    batches = engine.stats.batches
    first = threading.Thread(
        target=served.infer, args=(body(states(1)[0]),), kwargs={"x-request-deadline-ms": "5000"}
    )
    first.start()
    time.sleep(0.05)  # the first one is running now: the second waits behind it
    r = served.infer(body(states(1, seed=9)[0]), **{"x-request-deadline-ms": "60"})
    first.join()
    assert r.status_code == 504, r.text
    assert r.json()["error"] == "deadline_exceeded" and "not run" in r.json()["message"]
    assert engine.stats.deadline_exceeded == 1
    assert engine.stats.batches == batches + 1  # only the first request's batch ran


def test_a_budget_out_of_reach_is_429_at_once() -> None:
    svc, _ = slow_service(0.1, max_batch=1, max_wait=0.0)  # the warm-up learns 100 ms
    gen = serve(svc)
    served = next(gen)
    batches = served.service.engine.stats.batches
    t0 = time.perf_counter()
    r = served.infer(body(states(1)[0]), **{"x-request-deadline-ms": "20"})
    took = time.perf_counter() - t0
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1 and r.json()["retry_after_s"] > 0.05
    assert took < 0.05  # refused at once, not after waiting for the model
    assert served.service.engine.stats.batches == batches
    gen.close()


def test_a_full_queue_is_429_with_retry_after(slow: tuple[Served, object]) -> None:
    served, model = slow
    model.delay = 0.05  # type: ignore[attr-defined]
    url = served.server.url + "/v1/models/policy/infer"

    def one(i: int) -> httpx.Response:
        return httpx.post(
            url, content=body(states(1, seed=i)[0]), headers={"x-request-deadline-ms": "9000"}
        )

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(12)))
    codes = sorted(r.status_code for r in answers)
    assert 200 in codes and 429 in codes, codes
    assert set(codes) <= {200, 429}
    for r in answers:
        if r.status_code == 429:
            assert r.headers["retry-after"] and r.json()["error"] == "overloaded"


def test_a_drained_model_is_503_and_not_ready(served: Served, admin: Admin) -> None:
    assert served.client.get("/readyz").status_code == 200
    r = served.client.post(
        "/v1/models/policy/drain", headers={"authorization": f"Bearer {admin.token('alice')}"}
    )
    assert r.status_code == 200, r.text
    r = served.infer(body(states(1)[0]))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    ready = served.client.get("/readyz")
    assert ready.status_code == 503 and "policy" in ready.json()["message"]


def test_an_open_breaker_is_answered_by_the_fallback_then_503_mapping() -> None:
    svc, model = slow_service(max_batch=1, max_wait=0.0)
    gen = serve(svc)
    served = next(gen)
    try:
        model.fail = True
        reasons = []
        for i in range(25):
            r = served.infer(body(states(1, seed=i)[0]), **{"x-request-deadline-ms": "1000"})
            assert r.status_code == 200, r.text
            assert r.json()["fallback"] is True
            reasons.append(r.json()["reason"])
        # the model's failures first, then the breaker opens and the fallback answers alone
        assert reasons[0].startswith("RuntimeError") and reasons[-1].startswith("CircuitOpen")
    finally:
        gen.close()
    # a service without a fallback raises CircuitOpen: the server answers 503 at once
    r = _refusal(CircuitOpen("breaker open", retry_after=2.5))
    assert r.status == 503 and r.headers()["Retry-After"] == "3"
    r = _refusal(Overloaded("full", retry_after=0.0004))
    assert r.status == 429 and r.headers()["Retry-After"] == "1"
