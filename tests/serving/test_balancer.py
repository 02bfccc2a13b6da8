"""ReplicaSet: least-outstanding routing over real engines; a replica leaves the balancer
before it is drained and closed, so no request ever reaches a closed engine."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from system0.errors import Closed, Overloaded
from system0.interfaces.inference_engine import InferenceEngine, InferenceResult, InvalidRequest
from system0.serving.balancer import ReplicaSet

from .scale_support import engine_factory, states


def _settled(rs: ReplicaSet) -> None:
    """Wait until every answer's callback ran (they run just after its waiters wake)."""
    deadline = time.monotonic() + 2
    while any(r.outstanding for r in rs.replicas()) and time.monotonic() < deadline:
        time.sleep(0.001)


def test_requests_go_to_the_replica_with_the_fewest_outstanding() -> None:
    tick = states(12)
    with ReplicaSet(engine_factory(delay=0.05, max_batch=1), 3, name="lor") as rs:
        futs = [rs.submit(s, budget=5.0) for s in tick[:3]]
        # one in flight on each: ties went round the set, not all to the first replica
        assert sorted(r.outstanding for r in rs.replicas()) == [1, 1, 1]
        for f in futs:
            f.result(5)
        _settled(rs)
        busy = rs.submit_many(tick[3:9], budget=5.0)  # a tick of 6 rides on one replica
        loaded = [r for r in rs.replicas() if r.outstanding == 6]
        assert len(loaded) == 1
        before = {r.name: r.routed for r in rs.replicas()}
        more = [rs.submit(s, budget=5.0) for s in tick[9:12]]
        # the three single requests avoided the replica holding the tick
        got = sorted(r.routed - before[r.name] for r in rs.replicas() if r.name != loaded[0].name)
        assert got == [1, 2]
        results = [f.result(10) for f in busy + more]
        _settled(rs)
        assert [r.outstanding for r in rs.replicas()] == [0, 0, 0]
    assert all(isinstance(r, InferenceResult) and r.outputs.shape == (8,) for r in results)


def test_a_bad_request_is_refused_and_its_reservation_released() -> None:
    bad = {**states(1)[0], "health": -1.0}
    with ReplicaSet(engine_factory(), 2, name="bad") as rs:
        with pytest.raises(InvalidRequest) as info:
            rs.submit(bad, budget=1.0)
        assert info.value.reasons == ("greater_than_equal:health",)
        with pytest.raises(InvalidRequest):
            rs.submit_many([states(1)[0], bad], budget=1.0)
        assert [r.outstanding for r in rs.replicas()] == [0, 0]  # refused: never in flight
        assert rs.infer(states(1)[0], budget=1.0).outputs.shape == (8,)


def test_an_overloaded_replica_spills_to_the_others_then_the_set_refuses() -> None:
    tick = states(8)
    with ReplicaSet(
        engine_factory(delay=0.2, max_batch=1, queue_capacity=1), 2, name="spill"
    ) as rs:
        futs = [rs.submit(s, budget=30.0) for s in tick[:2]]  # one on each replica
        deadline = time.monotonic() + 5  # until both workers took theirs from the queue
        while any(len(e.queue) for e in rs.engines()) and time.monotonic() < deadline:
            time.sleep(0.001)
        refused: list[Overloaded] = []
        for s in tick[2:]:
            try:
                futs.append(rs.submit(s, budget=30.0))
            except Overloaded as exc:
                refused.append(exc)
        # each replica runs one and queues one: four admitted, the rest refused by both
        assert len(futs) == 4 and len(refused) == 4
        assert "all 2 replicas refused" in str(refused[0])
        assert rs.load().rejected == 4
        assert all(not f.result(10).fallback for f in futs)


def test_scaling_down_drains_before_closing_and_never_routes_to_a_closed_replica() -> None:
    closed_while_busy: list[str] = []
    sent_to_closed: list[str] = []

    class Watched(InferenceEngine):
        """A real engine that records a call arriving after close (what must never be)."""

        def submit(self, request: Any, budget: float) -> Future[InferenceResult]:
            if self.closed:
                sent_to_closed.append(self.name)
            return super().submit(request, budget)

        def close(self, timeout: float = 5.0) -> None:
            if len(self.queue):
                closed_while_busy.append(self.name)
            super().close(timeout)

    factory = engine_factory(delay=0.003, engine=Watched)
    tick = states(16)
    errors: list[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            try:
                rs.submit(tick[i % 16], budget=5.0).result(5)
                answered[0] += 1
            except BaseException as exc:
                errors.append(exc)
            i += 1

    with ReplicaSet(factory, 4, name="drain") as rs:
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.2)
            for n in (2, 3, 1, 4, 1):
                assert rs.scale_to(n) == n
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
    assert errors == [] and answered[0] > 50
    assert sent_to_closed == [] and closed_while_busy == []
    # slots are reused: the names stay bounded by the largest size
    assert {r.name for r in rs.replicas()} <= {f"drain#{i}" for i in range(4)}


def test_remove_and_close_refuse_what_they_cannot_do() -> None:
    rs = ReplicaSet(engine_factory(), 2, name="rm")
    with pytest.raises(ValueError, match="no serving replica 'rm#7'"):
        rs.remove("rm#7")
    rs.remove("rm#0")
    assert [r.name for r in rs.replicas()] == ["rm#1"]
    with pytest.raises(ValueError, match="last replica"):
        rs.remove("rm#1")
    with pytest.raises(ValueError, match="at least 1"):
        rs.scale_to(0)
    rs.close()
    with pytest.raises(Closed):
        rs.submit(states(1)[0], budget=1.0)
    with pytest.raises(ValueError, match="'#'"):
        ReplicaSet(engine_factory(), 1, name="a#b")


def test_a_replica_that_fails_to_build_leaves_no_engine_running() -> None:
    built: list[InferenceEngine] = []
    build = engine_factory()

    def factory(name: str) -> InferenceEngine:
        if len(built) == 2:
            raise FileNotFoundError("weights missing on this node")
        built.append(build(name))
        return built[-1]

    with pytest.raises(FileNotFoundError, match="weights missing"):
        ReplicaSet(factory, 3, name="fail")
    assert len(built) == 2 and all(e.closed for e in built)
