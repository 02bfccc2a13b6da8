"""The engine as a Ray Serve deployment on a local Ray instance (``ray.init(num_cpus=2)``):
it answers game states through a handle and over HTTP, and Ray's bounded queue refuses with
the typed error (handle) or 503 + Retry-After (HTTP). The settings mapping and the health
check run without Ray.

Without the ``ray`` extra the Ray tests skip, unless SYSTEM0_REQUIRE_RAY=1 (CI sets it):
then a missing ray is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from system0.errors import Overloaded, Unavailable
from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.game.policy import load_policy
from system0.interfaces.inference_engine import InferenceEngine, InvalidRequest
from system0.interfaces.model_interface import NumpyModelInterface
from system0.serving.autoscaler import AutoscalingConfig
from system0.serving.factory import PolicyEngineFactory
from system0.serving.ray_serve import (
    EngineDeployment,
    RayServeClient,
    RayServeSettings,
    deployment_options,
    engine_application,
    http_refusal,
)

from .scale_support import states

# each request waits up to 50 ms for company in the engine: long enough that a burst
# fills Ray's small queue before the replica has answered
FACTORY = PolicyEngineFactory(max_batch=64, max_wait=0.05)
SETTINGS = RayServeSettings(
    autoscaling=AutoscalingConfig(min_replicas=1, max_replicas=1, target_ongoing_requests=1),
    max_ongoing_requests=2,
    max_queued_requests=2,
    retry_after_s=2.0,
    budget_s=5.0,
    num_cpus=0.5,
)


def test_settings_map_to_rays_names() -> None:
    cfg = AutoscalingConfig(
        min_replicas=2,
        max_replicas=6,
        target_ongoing_requests=8,
        upscale_delay_s=3,
        downscale_delay_s=45,
    )
    opts = deployment_options(RayServeSettings(cfg, max_ongoing_requests=16, retry_after_s=3))
    assert opts["autoscaling_config"] == {
        "min_replicas": 2,
        "initial_replicas": 2,
        "max_replicas": 6,
        "target_ongoing_requests": 8,
        "upscale_delay_s": 3,
        "downscale_delay_s": 45,
    }
    assert opts["max_ongoing_requests"] == 16 and opts["max_queued_requests"] == 64
    assert opts["backpressure_config"] == {"status_code": 503, "retry_after_s": 3}
    with pytest.raises(ValueError, match="without bound"):
        RayServeSettings(max_queued_requests=-1)
    with pytest.raises(ValueError, match="target_ongoing_requests"):
        RayServeSettings(cfg, max_ongoing_requests=4)
    refusal = {"type": "Overloaded", "retry_after": 0.004}
    assert http_refusal(refusal, 1.0) == (429, {"Retry-After": "1"})
    assert http_refusal({"type": "CircuitOpen", "retry_after": 4.2}, 1.0)[1] == {"Retry-After": "5"}
    assert http_refusal({"type": "InvalidRequest"}, 1.0) == (422, {})


class _Breakable(NumpyModelInterface):
    """The shipped policy, until ``broken`` is set (after the warm-up it passed)."""

    broken = False

    def infer(self, x: npt.NDArray[np.float32]) -> Any:
        if self.broken:
            raise RuntimeError("weights corrupted in memory")
        return super().infer(x)


def _breakable_factory(name: str) -> InferenceEngine:
    source = load_policy("numpy")
    assert isinstance(source, NumpyModelInterface)
    return InferenceEngine(
        _Breakable(source.mlp),
        validator=state_validator(),
        fallback=heuristic_probabilities,
        name=name,
    )


def test_the_health_check_runs_a_real_inference() -> None:
    healthy = EngineDeployment(FACTORY, "health-ok")
    healthy.check_health()
    assert healthy.engine.stats.completed >= 1
    broken = EngineDeployment(_breakable_factory, "health-broken")
    broken.check_health()
    model = broken.engine.model
    assert isinstance(model, _Breakable)
    model.broken = True
    with pytest.raises(Unavailable, match="answered by the fallback"):
        broken.check_health()
    for d in (healthy, broken):
        d.engine.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Any, str]]:
    """One local Ray instance and one deployment for the module: (handle, HTTP url)."""
    if os.environ.get("SYSTEM0_REQUIRE_RAY") == "1":
        import ray  # CI installs the ray extra: its absence is a failure there
    else:
        ray = pytest.importorskip(
            "ray", reason="the ray extra is not installed (SYSTEM0_REQUIRE_RAY=1 requires it)"
        )
    from ray import serve

    port = _free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        app = engine_application(FACTORY, name="policy", settings=SETTINGS)
        handle = serve.run(app, name="policy", route_prefix="/policy")
        yield handle, f"http://127.0.0.1:{port}/policy"
    finally:
        serve.shutdown()
        ray.shutdown()


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    req = urllib.request.Request(url, body, headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def test_a_deployment_answers_game_states_through_a_handle_and_http(
    deployed: tuple[Any, str],
) -> None:
    handle, url = deployed
    client = RayServeClient(handle, retry_after_s=SETTINGS.retry_after_s)
    tick = states(5)
    results = client.infer(tick, budget_s=5.0)
    with FACTORY("local") as local:
        want = [f.result(5) for f in local.submit_many(tick, 5.0)]
    assert [r.action for r in results] == [w.action for w in want]
    assert all(not r.fallback and r.outputs.shape == (8,) for r in results)
    np.testing.assert_allclose(results[0].outputs, want[0].outputs, rtol=1e-6)
    with pytest.raises(InvalidRequest) as info:
        client.infer([tick[0], {**tick[1], "health": -3.0}], budget_s=5.0)
    assert info.value.index == 1 and info.value.reasons == ("greater_than_equal:health",)

    status, body, _ = _post(url, json.dumps(tick[:2]).encode(), {"X-Request-Deadline-Ms": "4000"})
    assert status == 200 and [a["action"] for a in body] == [w.action for w in want[:2]]
    status, raw, _ = _post(url, json.dumps({**tick[0], "mana": -1.0}).encode())
    assert status == 422 and json.loads(raw)["error"]["reasons"] == ["greater_than_equal:mana"]
    status, raw, _ = _post(url, b"[1, 2", {})
    assert status == 422


def test_rays_bounded_queue_refuses_as_overloaded_and_503_with_retry_after(
    deployed: tuple[Any, str],
) -> None:
    handle, url = deployed
    client = RayServeClient(handle, retry_after_s=SETTINGS.retry_after_s)
    one = states(1)
    pending = [client.submit(one, 5.0) for _ in range(12)]  # a burst: 2 running, 2 queued
    answered, refused = 0, []
    for p in pending:
        try:
            p.result(30)
            answered += 1
        except Overloaded as exc:
            refused.append(exc)
    assert answered >= 1 and len(refused) >= 6
    assert refused[0].retry_after == SETTINGS.retry_after_s
    body = json.dumps(one).encode()
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda _: _post(url, body), range(12)))
    codes = [code for code, _, _ in replies]
    assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
    assert set(codes) <= {200, 503}
    assert all(h["Retry-After"] == "2" for code, _, h in replies if code == 503)
