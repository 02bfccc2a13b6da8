"""Autoscaler: bounds, delays, cooldowns and hysteresis on a fake clock against a simulated
service (a queue whose load follows its size); then real threads on a real ReplicaSet."""

from __future__ import annotations

import itertools
import math
import threading
import time

import numpy as np
import pytest

from system0 import _core
from system0.serving.autoscaler import Autoscaler, AutoscalingConfig, ScalingDecision
from system0.serving.balancer import LoadSample, ReplicaSet

from .scale_support import engine_factory, states

WINDOW_NS = 1_000_000_000


class SimulatedService:
    """``size`` servers under ``offered`` Erlangs of work (busy servers' worth), each an
    M/M/1 queue: per server utilisation rho = offered / size (at most 0.95: past that it is
    saturated), rho / (1 - rho) requests outstanding, a wait of service_s / (1 - rho), and
    multiplicative noise every window. It is the autoscaler's real interface (``size``,
    ``load``, ``scale_to``) over a model of the load instead of threads, so hundreds of
    windows run in milliseconds on a fake clock; the latency histogram gets one record per
    10 answers of the window (the autoscaler reads throughput from its count)."""

    def __init__(
        self, offered: float, service_s: float = 0.01, noise: float = 0.2, seed: int = 0
    ) -> None:
        self.offered, self.service_s, self.noise = offered, service_s, noise
        self.size = 1
        self.rng = np.random.default_rng(seed)
        self.hist = _core.Registry().histogram("sim_latency_ns", [], "", "ns", 10)

    def load(self) -> LoadSample:
        rho = min(self.offered / self.size, 0.95)
        jitter = float(self.rng.lognormal(0.0, self.noise)) if self.noise else 1.0
        outstanding = round(self.size * rho / (1 - rho) * jitter)
        wait_ns = int(self.service_s / (1 - rho) * jitter * 1e9)
        for _ in range(math.ceil(rho * self.size / self.service_s / 10)):
            self.hist.record(wait_ns)
        depth = max(0, outstanding - self.size)
        return LoadSample(self.size, outstanding, depth, self.hist.snapshot(), 0)

    def scale_to(self, n: int) -> int:
        self.size = n
        return n


def run(scaler: Autoscaler, windows: int, start: int = 0) -> list[ScalingDecision]:
    return [scaler.evaluate(start + i * WINDOW_NS) for i in range(windows)]


def reversals(decisions: list[ScalingDecision]) -> list[int]:
    """The windows at which the direction of change flipped."""
    moves = [(i, d.direction) for i, d in enumerate(decisions) if d.direction != "hold"]
    return [b[0] for a, b in itertools.pairwise(moves) if a[1] != b[1]]


@pytest.mark.parametrize("offered", [0.3, 0.9, 1.5, 2.0, 2.6, 3.4, 5.0])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_steady_noisy_load_changes_direction_at_most_once_per_10_windows(
    offered: float, seed: int
) -> None:
    svc = SimulatedService(offered, seed=seed)
    cfg = AutoscalingConfig(
        max_replicas=8,
        target_ongoing_requests=1.0,
        upscale_delay_s=2,
        downscale_delay_s=10,
        upscale_cooldown_s=2,
        downscale_cooldown_s=10,
    )
    decisions = run(Autoscaler(svc, cfg), 400)
    flips = reversals(decisions)
    assert all(b - a >= 10 for a, b in itertools.pairwise([-10, *flips])), flips
    # and it settles: a few changes in all (a load right at a threshold may cost one more
    # once noise holds it over for the delay), none in the last 100 windows
    moves = [(d.before, d.after, d.reason) for d in decisions if d.direction != "hold"]
    assert all(d.direction == "hold" for d in decisions[300:]), moves
    assert len(moves) <= 4, moves


def test_growth_waits_for_the_delay_and_a_spike_does_not_count() -> None:
    svc = SimulatedService(0.4, noise=0.0)  # 0.67 outstanding at size 1: inside the band
    cfg = AutoscalingConfig(target_ongoing_requests=1, upscale_delay_s=3, max_replicas=6)
    scaler = Autoscaler(svc, cfg)
    assert [d.direction for d in run(scaler, 3)] == ["hold"] * 3
    svc.offered = 0.9  # a spike for two windows, then calm
    spike = run(scaler, 2, 3 * WINDOW_NS)
    svc.offered = 0.4
    calm = run(scaler, 5, 5 * WINDOW_NS)
    assert [d.direction for d in spike + calm] == ["hold"] * 7
    svc.offered = 0.8  # lasting: grows once the pressure held for 3 s
    lasting = run(scaler, 5, 10 * WINDOW_NS)
    assert [d.direction for d in lasting] == ["hold", "hold", "hold", "up", "hold"]
    assert lasting[3].after >= 2 and lasting[4].load_ratio <= cfg.upscale_threshold


def test_cooldowns_space_the_changes_and_the_bounds_hold() -> None:
    svc = SimulatedService(50.0, noise=0.0)  # saturated at any size
    cfg = AutoscalingConfig(
        max_replicas=5,
        target_ongoing_requests=2,
        upscale_delay_s=0,
        downscale_delay_s=0,
        upscale_cooldown_s=4,
        downscale_cooldown_s=6,
    )
    scaler = Autoscaler(svc, cfg)
    assert scaler.evaluate(0).after == 5 == svc.size  # straight to the bound
    assert "max_replicas" in scaler.evaluate(WINDOW_NS).reason
    svc.offered = 0.0  # idle: shrinks once the downscale cooldown is over
    idle = run(scaler, 6, 1 * WINDOW_NS)
    assert [d.direction for d in idle] == ["hold"] * 5 + ["down"]
    assert "cooldown" in idle[0].reason and svc.size == 1
    svc.offered = 50.0  # busy again: grows once the upscale cooldown is over
    busy = run(scaler, 5, 7 * WINDOW_NS)
    assert [d.direction for d in busy] == ["hold"] * 3 + ["up", "hold"]
    svc.scale_to(9)  # someone resized it by hand: back within the bounds at once
    assert scaler.evaluate(13 * WINDOW_NS).after == 5


def test_the_latency_target_grows_the_set_when_the_queue_is_short() -> None:
    svc = SimulatedService(0.2, service_s=0.05, noise=0.0)  # slow requests, few of them
    cfg = AutoscalingConfig(target_ongoing_requests=1, latency_target_ms=20, upscale_delay_s=0)
    d = Autoscaler(svc, cfg).evaluate(0)
    assert d.load_ratio < 0.5 and d.latency_p99_ns is not None and d.pressure > 1
    assert d.direction == "up"


def test_a_shrink_that_would_land_over_target_is_not_made() -> None:
    svc = SimulatedService(0.7, noise=0.0)  # at 2: 0.54 per replica; at 1 it would be 2.33
    svc.scale_to(2)
    cfg = AutoscalingConfig(
        target_ongoing_requests=1.0,
        downscale_threshold=0.6,
        downscale_delay_s=0,
        downscale_cooldown_s=0,
    )
    decisions = run(Autoscaler(svc, cfg), 30)
    assert decisions[-1].load_ratio < cfg.downscale_threshold
    assert {d.direction for d in decisions} == {"hold"} and svc.size == 2
    assert "one fewer would be over target" in decisions[-1].reason


def test_bad_settings_are_refused_with_what_to_fix() -> None:
    with pytest.raises(ValueError, match="min_replicas <= max_replicas"):
        AutoscalingConfig(min_replicas=3, max_replicas=2)
    with pytest.raises(ValueError, match="hysteresis"):
        AutoscalingConfig(upscale_threshold=0.5, downscale_threshold=0.5)
    with pytest.raises(ValueError, match="window_s"):
        AutoscalingConfig(window_s=0)
    with pytest.raises(ValueError, match="latency_target_ms"):
        AutoscalingConfig(latency_target_ms=float("nan"))


def test_real_threads_scale_up_under_load_and_back_down_when_idle() -> None:
    tick = states(16)
    cfg = AutoscalingConfig(
        min_replicas=1,
        max_replicas=3,
        target_ongoing_requests=2,
        window_s=0.05,
        upscale_delay_s=0.1,
        downscale_delay_s=0.4,
        upscale_cooldown_s=0.1,
        downscale_cooldown_s=0.2,
    )
    stop = threading.Event()
    failures: list[BaseException] = []

    def client(k: int) -> None:
        i = k
        while not stop.is_set():
            try:
                rs.infer(tick[i % len(tick)], budget=5.0)
            except BaseException as exc:
                failures.append(exc)
            i += 1

    with ReplicaSet(engine_factory(delay=0.01, max_batch=2), 1, name="auto") as rs:
        with Autoscaler(rs, cfg, name="auto-test") as scaler:
            clients = [threading.Thread(target=client, args=(k,)) for k in range(8)]
            for t in clients:
                t.start()
            deadline = time.monotonic() + 10
            while rs.size < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            peak = rs.size
            stop.set()
            for t in clients:
                t.join(10)
            while rs.size > 1 and time.monotonic() < deadline + 10:
                time.sleep(0.02)
            final = rs.size
    assert failures == []
    assert peak == 3 and final == 1
    moves = [d.direction for d in scaler.decisions if d.direction != "hold"]
    assert moves[0] == "up" and moves[-1] == "down"
