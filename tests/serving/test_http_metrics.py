"""/metrics is Prometheus text with histograms (checked by promtool when installed, and by
prometheus_client's parser); /healthz, /readyz, /v1/models and the OpenAPI spec."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from .serving_fixtures import Served, body, states


def test_metrics_are_prometheus_text_with_histograms(served: Served) -> None:
    for _ in range(3):
        assert served.infer(body(states(1)[0])).status_code == 200
    assert served.infer(b"[]").status_code == 422
    r = served.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    http = families["serving_request_ns"]
    assert http.type == "histogram"
    counts = {
        s.labels["status"]: s.value
        for s in http.samples
        if s.name == "serving_request_ns_count" and s.labels["model"] == "policy"
    }
    assert counts["200"] >= 3 and counts["422"] >= 1
    assert any(s.name == "serving_request_ns_bucket" for s in http.samples)
    assert families["engine_total_ns"].type == "histogram"
    promtool = shutil.which("promtool")
    if promtool is not None:
        check = subprocess.run(
            [promtool, "check", "metrics"], input=r.text, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_health_readiness_models_and_spec(served: Served) -> None:
    assert served.client.get("/healthz").json() == {"status": "ok"}
    assert served.client.get("/readyz").status_code == 200
    (m,) = served.client.get("/v1/models").json()["models"]
    assert m["name"] == "policy" and m["active"] == served.service.version
    assert m["versions"][0]["content_hash"] == served.service.content_hash
    spec = served.client.get("/openapi.json").json()
    infer = spec["paths"]["/v1/models/{name}/infer"]["post"]
    content = infer["requestBody"]["content"]
    assert set(content) >= {"application/json", "application/vnd.apache.arrow.stream"}
    assert "GameState" in spec["components"]["schemas"]
    assert {"413", "422", "429", "503", "504"} <= set(infer["responses"])


def test_readiness_waits_for_the_warm_up() -> None:
    from system0.game.policy import policy_weights_path
    from system0.serving.pinned import PinnedService

    from .serving_fixtures import serve

    svc = PinnedService.from_weights("policy", policy_weights_path())  # loaded, not warmed
    gen = serve(svc)
    served = next(gen)
    try:
        assert served.client.get("/readyz").status_code == 503
        assert served.infer(body(states(1)[0])).status_code == 503
        svc.warm()
        assert served.client.get("/readyz").status_code == 200
    finally:
        gen.close()


class _Firing:
    """An alert source as the alert manager is one: the alerts firing now."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, object]] = []

    def active(self) -> list[dict[str, object]]:
        return list(self.alerts)


def test_stats_carry_the_firing_alerts_and_the_window() -> None:
    from .serving_fixtures import pinned, serve

    firing = _Firing()
    gen = serve(pinned(), alerts=firing)
    served = next(gen)
    try:
        assert served.client.get("/v1/stats").json()["alerts"] == []
        firing.alerts.append({"alertname": "LatencyHigh", "model": "policy"})
        for _ in range(5):
            served.infer(body(states(1)[0]))
        stats = served.client.get("/v1/stats").json()
        assert stats["alerts"] == [{"alertname": "LatencyHigh", "model": "policy"}]
        m = stats["models"]["policy"]
        assert m["latency_ns"]["count"] == 5 and m["latency_ns"]["p99"] > 0
        assert m["statuses"] == {"200": 5} and m["breaker"] == "closed"
    finally:
        gen.close()
