"""AlertManager: Prometheus' `for` and `keep_firing_for`, Alertmanager's grouping, waits,
repeats, dedup and inhibition, flap damping, on a fake clock; sinks against a real HTTP
receiver on loopback; rules fed from a real engine's telemetry."""

from __future__ import annotations

import http.server
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest

from system0 import _core
from system0.core import telemetry
from system0.errors import Unavailable
from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.interfaces.inference_engine import InferenceEngine
from system0.interfaces.model_interface import NumpyModelInterface
from system0.serving.alert_rules import (
    BreakerOpenRule,
    ErrorRateRule,
    LatencyRule,
    ModelWindow,
    TelemetrySource,
    default_rules,
)
from system0.serving.alert_sinks import CallbackSink, LogSink, WebhookSink, webhook_payload
from system0.serving.alerts import AlertManager, Notification

from .scale_support import policy, states

S = 1_000_000_000


def window(model: str, p99_ms: float | None = None, *, errors: int = 0, breaker: bool = False):
    """A window of 20 answers at ``p99_ms`` (None: no answers), ``errors`` of them failed."""
    hist = _core.Registry().histogram("w_ns", [], "", "ns", 10)
    if p99_ms is not None:
        for _ in range(20):
            hist.record(int(p99_ms * 1e6))
    n = 20 if p99_ms is not None else 0
    return ModelWindow(model, n, errors, hist.snapshot(), breaker)


def manager(*rules: Any, **opts: Any) -> tuple[AlertManager, list[Notification]]:
    sent: list[Notification] = []
    timing = {"group_wait_s": 0, "group_interval_s": 5, "repeat_interval_s": 60, **opts}
    return AlertManager(rules, sinks=[CallbackSink(sent.append)], **timing), sent


def test_for_holds_an_alert_pending_and_keep_firing_for_and_resolve_hold_it_firing() -> None:
    rule = LatencyRule("Slow", 50.0, resolve=40.0, for_s=3, keep_firing_for_s=5)
    am, sent = manager(rule)
    values = [60, 60, 10, 10, 10, 60, 60, 60, 60, 45, 45, 45, 30, 30, 30, 30, 30, 30]
    states_seen = []
    for t, v in enumerate(values):
        am.evaluate(t * S, {"m": window("m", v)})
        states_seen.append("firing" if am.active() else "pending" if am.pending() else "-")
    # a 2 s breach never fires (for 3 s); the next one fires after 3 s; 45 ms stays over the
    # resolve threshold (40); under it, it keeps firing until 5 s past the last breach (t=11)
    assert states_seen == (
        ["pending", "pending", "-", "-", "-"] + ["pending"] * 3 + ["firing"] * 8 + ["-"] * 2
    )
    firing = [n for n in sent if n.firing]
    assert len(firing) == 1 and firing[0].at_ns == 8 * S
    assert sent[-1].status == "resolved" and sent[-1].at_ns == 16 * S
    assert sent[-1].resolved[0].summary.startswith("m: p99 latency 30.00 ms")


def test_groups_wait_then_send_once_repeat_after_the_interval_and_announce_resolutions() -> None:
    am, sent = manager(
        LatencyRule("Slow", 50.0), group_wait_s=3, group_interval_s=5, repeat_interval_s=20
    )
    slow = {"a": window("a", 80), "b": window("b", 10)}
    am.evaluate(0, slow)
    am.evaluate(1 * S, {**slow, "b": window("b", 90)})
    for t in range(2, 10):
        am.evaluate(t * S, {"a": window("a", 80), "b": window("b", 90)})
    # one notification for the group after group_wait, holding both models
    assert [(n.at_ns, [a.label_map["model"] for a in n.firing]) for n in sent] == [
        (3 * S, ["a", "b"])
    ]
    for t in range(10, 30):
        am.evaluate(t * S, {"a": window("a", 80), "b": window("b", 90)})
    assert [n.at_ns for n in sent] == [3 * S, 23 * S] and sent[1].repeat  # dedup, then repeat
    for t in range(30, 40):
        am.evaluate(t * S, {"a": window("a", 80), "b": window("b", 5)})
    # b resolved at 30, past the group_interval since the last send (23 + 5): sent at once
    last = sent[-1]
    assert last.at_ns == 30 * S and len(sent) == 3
    assert [a.label_map["model"] for a in last.firing] == ["a"]
    assert [a.label_map["model"] for a in last.resolved] == ["b"] and not last.repeat
    assert [a.label_map["model"] for a in am.active()] == ["a"]


@pytest.mark.parametrize("keep_firing_for_s", [0.0, 4.0])
def test_a_flapping_signal_is_announced_firing_at_most_once_per_repeat_interval(
    keep_firing_for_s: float,
) -> None:
    rng = np.random.default_rng(7)
    rule = ErrorRateRule("Errors", 0.1, keep_firing_for_s=keep_firing_for_s)
    am, sent = manager(rule, group_wait_s=1, group_interval_s=5, repeat_interval_s=60)
    on, left = True, 0
    for t in range(1200):  # 20 minutes of windows; runs of 1 to 3 windows on, then off
        if left == 0:
            on, left = not on, int(rng.integers(1, 4))
        left -= 1
        am.evaluate(t * S, {"m": window("m", 5, errors=8 if on else 0)})
    announced = [n.at_ns for n in sent if n.firing]
    assert announced, "the alert fired"
    gaps = [b - a for a, b in itertools.pairwise(announced)]
    assert all(g >= 60 * S for g in gaps), gaps
    assert len(announced) <= 1200 // 60 + 1
    resolved = [n for n in sent if n.resolved]
    if keep_firing_for_s:  # the hysteresis keeps it firing through every dip
        assert resolved == [] and all(n.repeat for n in sent[1:])
    else:  # it did resolve, and at most once between two firing announcements
        assert 1 <= len(resolved) <= len(announced)


def test_an_open_breaker_mutes_the_latency_alerts_of_its_model_only() -> None:
    am, sent = manager(LatencyRule("ModelLatencyHigh", 50.0), BreakerOpenRule("ModelBreakerOpen"))
    am.evaluate(0, {"a": window("a", 90, breaker=True), "b": window("b", 90)})
    assert sorted((a.alertname, a.label_map["model"]) for a in am.active()) == [
        ("ModelBreakerOpen", "a"),
        ("ModelLatencyHigh", "b"),
    ]
    assert [(a.alertname, a.label_map["model"]) for a in am.suppressed()] == [
        ("ModelLatencyHigh", "a")
    ]
    sent_models = {(a.alertname, a.label_map["model"]) for n in sent for a in n.firing}
    assert ("ModelLatencyHigh", "a") not in sent_models
    # the breaker closes and the latency stays high: the latency alert is news now
    for t in range(1, 7):
        am.evaluate(t * S, {"a": window("a", 90), "b": window("b", 90)})
    latency = [n for n in sent if n.group_labels == (("alertname", "ModelLatencyHigh"),)]
    assert [a.label_map["model"] for a in latency[-1].firing] == ["a", "b"]


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        n = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"bodies": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_posts_alertmanagers_payload_to_a_real_receiver(
    receiver: tuple[str, type[_Receiver]], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = receiver
    got: list[Notification] = []
    sinks = [WebhookSink(url), LogSink(), CallbackSink(got.append)]
    am = AlertManager(
        [LatencyRule("ModelLatencyHigh", 50.0)], sinks=sinks, group_wait_s=0, group_interval_s=1
    )
    with caplog.at_level(logging.INFO, logger="system0.alerts"):
        am.evaluate(0, {"policy": window("policy", 75)})
        am.evaluate(2 * S, {"policy": window("policy", 5)})
    assert len(handler.bodies) == 2 and len(got) == 2
    fired, ended = handler.bodies
    assert fired["version"] == "4" and fired["status"] == "firing"
    assert fired["groupLabels"] == {"alertname": "ModelLatencyHigh"}
    assert fired["commonLabels"]["model"] == "policy"
    (alert,) = fired["alerts"]
    assert alert["labels"] == {
        "alertname": "ModelLatencyHigh",
        "model": "policy",
        "severity": "warning",
    }
    assert alert["annotations"]["summary"] == "policy: p99 latency 75.00 ms over 50 ms"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z" and alert["startsAt"].endswith("Z")
    assert ended["status"] == "resolved" and ended["alerts"][0]["status"] == "resolved"
    assert fired == webhook_payload(got[0])
    assert "alert firing: policy: p99 latency 75.00 ms" in caplog.text
    assert "alert resolved" in caplog.text


def test_a_failing_sink_is_counted_and_the_others_still_get_the_notification(
    receiver: tuple[str, type[_Receiver]], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = receiver
    handler.status = 500
    note = Notification("r", "{}", (), (), (), 0)
    with pytest.raises(Unavailable, match="answered 500"):
        WebhookSink(url)(note)
    with pytest.raises(Unavailable, match="could not be reached"):
        WebhookSink("http://127.0.0.1:9/nowhere", timeout=0.5)(note)
    got: list[Notification] = []
    am = AlertManager(
        [LatencyRule("SlowA", 50.0)],
        sinks=[WebhookSink(url), CallbackSink(got.append)],
        group_wait_s=0,
        receiver="failing-test",
    )
    with caplog.at_level(logging.ERROR, logger="system0.serving.alerts"):
        am.evaluate(0, {"m": window("m", 75)})
    assert len(got) == 1 and "the other sinks still get it" in caplog.text
    outcomes = telemetry.counter("alerts_notifications", ("receiver", "outcome"))
    assert outcomes.labels("failing-test", "failed").value == 1
    assert outcomes.labels("failing-test", "sent").value == 1
    with pytest.raises(ValueError, match="http"):
        WebhookSink("ftp://example")


class _Broken(NumpyModelInterface):
    """The shipped policy's weights behind a model call that always fails."""

    def infer(self, x: npt.NDArray[np.float32]) -> Any:
        raise RuntimeError("the accelerator fell off the bus")


def test_rules_fed_from_a_real_engines_telemetry_fire_and_inhibit() -> None:
    source = policy()
    assert isinstance(source, NumpyModelInterface)
    broken = _Broken(source.mlp, name="broken")
    models = ("alerting-broken", "alerting-fine")
    rules = [
        LatencyRule("ModelLatencyHigh", 0.0, models=models),  # any answer is "slow"
        ErrorRateRule("ModelErrorRateHigh", 0.5, models=models),
        BreakerOpenRule("ModelBreakerOpen", models=models),
    ]
    am = AlertManager(rules, source=TelemetrySource(), group_wait_s=0)
    tick = states(12)
    common: dict[str, Any] = {"validator": state_validator(), "max_batch": 1}
    with (
        InferenceEngine(
            broken, fallback=heuristic_probabilities, name="alerting-broken#0", **common
        ) as bad,
        InferenceEngine(policy(), name="alerting-fine#0", **common) as good,
    ):
        am.evaluate()  # the baseline: counts before this test's requests
        for s in tick:
            assert bad.infer(s, budget=2.0).fallback
            assert not good.infer(s, budget=2.0).fallback
        assert bad.breaker.state == "open"
        am.evaluate()
    active = {(a.alertname, a.label_map["model"]) for a in am.active()}
    assert active == {
        ("ModelErrorRateHigh", "alerting-broken"),
        ("ModelBreakerOpen", "alerting-broken"),
        ("ModelLatencyHigh", "alerting-fine"),
    }
    assert [(a.alertname, a.label_map["model"]) for a in am.suppressed()] == [
        ("ModelLatencyHigh", "alerting-broken")
    ]


def test_bad_settings_are_refused_with_what_to_fix() -> None:
    with pytest.raises(ValueError, match="resolve"):
        LatencyRule("Slow", 10.0, resolve=20.0)
    with pytest.raises(ValueError, match="identifier"):
        LatencyRule("not a name", 10.0)
    with pytest.raises(ValueError, match="share"):
        ErrorRateRule("Errors", 1.5)
    with pytest.raises(ValueError, match="quantile"):
        LatencyRule("Slow", 10.0, quantile=0.0)
    with pytest.raises(ValueError, match="distinct names"):
        AlertManager([LatencyRule("X", 1.0), ErrorRateRule("X", 0.1)])
    with pytest.raises(ValueError, match="repeat_interval_s"):
        AlertManager([LatencyRule("X", 1.0)], group_interval_s=10, repeat_interval_s=5)
    assert [r.name for r in default_rules(50.0, 0.05)] == [
        "ModelLatencyHigh",
        "ModelErrorRateHigh",
        "ModelBreakerOpen",
    ]
