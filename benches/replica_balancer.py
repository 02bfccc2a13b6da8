"""ReplicaSet against what a user would otherwise do, same process, ratios printed.

    python benches/replica_balancer.py [--seconds 2] [--clients 12]

1. Balancer cost: a blocking batch-1 ``infer`` of a GameState through a one-replica
   ReplicaSet against the same call on the engine alone (p50 of each, interleaved rounds),
   and a 10-state tick through ``submit_many``.
2. Routing when one replica is slow: three replicas of the shipped policy plus a fixed cost
   per batch (a sleep that releases the GIL, as a GPU call would), one of them 4x slower
   (a noisy neighbour), under ``--clients`` closed-loop clients for ``--seconds``:
   least-outstanding routing (the ReplicaSet) against round-robin over the same three
   engines. Prints throughput and p99 latency of each and their ratios.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_actions, heuristic_probabilities
from system0.game.policy import load_policy
from system0.game.simulator import MatchSimulator
from system0.interfaces.inference_engine import InferenceEngine
from system0.interfaces.model_interface import NumpyModelInterface
from system0.serving.balancer import ReplicaSet
from system0.serving.factory import PolicyEngineFactory


def _states(n: int) -> list[dict[str, Any]]:
    sim, out = MatchSimulator(3), []
    while len(out) < n:
        tick = sim.observe()
        out.extend(dict(s) for s in tick.states)
        sim.step(heuristic_actions(tick.features))
    return out[:n]


def balancer_cost(rounds: int) -> None:
    tick = _states(10)
    one = tick[0]
    factory = PolicyEngineFactory(max_wait=0.0)
    with factory("bench-direct") as engine, ReplicaSet(factory, 1, name="bench-set") as rs:
        for _ in range(200):  # warm both paths
            engine.infer(one, 1.0)
            rs.infer(one, 1.0)
        direct: list[int] = []
        routed: list[int] = []
        many_direct: list[int] = []
        many_routed: list[int] = []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            engine.infer(one, 1.0)
            t1 = time.perf_counter_ns()
            rs.infer(one, 1.0)
            t2 = time.perf_counter_ns()
            for f in engine.submit_many(tick, 1.0):
                f.result()
            t3 = time.perf_counter_ns()
            for f in rs.submit_many(tick, 1.0):
                f.result()
            t4 = time.perf_counter_ns()
            direct.append(t1 - t0)
            routed.append(t2 - t1)
            many_direct.append(t3 - t2)
            many_routed.append(t4 - t3)
    d, r = statistics.median(direct), statistics.median(routed)
    md, mr = statistics.median(many_direct), statistics.median(many_routed)
    print(
        f"infer batch 1, p50: engine {d / 1e3:.1f} us, ReplicaSet {r / 1e3:.1f} us, "
        f"overhead {(r - d) / 1e3:.1f} us, ratio {r / d:.2f}"
    )
    print(
        f"submit_many tick of 10, p50: engine {md / 1e3:.1f} us, ReplicaSet {mr / 1e3:.1f} us, "
        f"overhead {(mr - md) / 1e3:.1f} us, ratio {mr / md:.2f}"
    )


class _Costly(NumpyModelInterface):
    """The shipped policy plus ``cost`` seconds per batch, GIL released."""

    def __init__(self, cost: float) -> None:
        base = load_policy("numpy")
        assert isinstance(base, NumpyModelInterface)
        super().__init__(base.mlp, name="costly")
        self.cost = cost

    def _forward(self, x: Any) -> Any:
        time.sleep(self.cost)
        return super()._forward(x)


def _engine(name: str, cost: float) -> InferenceEngine:
    return InferenceEngine(
        _Costly(cost),
        max_batch=4,
        max_wait=0.0005,
        validator=state_validator(),
        fallback=heuristic_probabilities,
        name=name,
    )


def _drive(call: Callable[[Any], Any], clients: int, seconds: float) -> tuple[float, float]:
    tick = _states(32)
    latencies: list[list[int]] = [[] for _ in range(clients)]
    stop = threading.Event()

    def client(k: int) -> None:
        mine = latencies[k]
        for i in itertools.count(k):
            if stop.is_set():
                return
            t0 = time.perf_counter_ns()
            call(tick[i % len(tick)])
            mine.append(time.perf_counter_ns() - t0)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    flat = np.concatenate([np.asarray(x, np.int64) for x in latencies])
    return len(flat) / elapsed, float(np.percentile(flat, 99)) / 1e6


def routing(clients: int, seconds: float) -> None:
    costs = {"#0": 0.002, "#1": 0.002, "#2": 0.008}  # one replica 4x slower

    def factory(name: str) -> InferenceEngine:
        return _engine(name, costs[name[name.index("#") :]])

    with ReplicaSet(factory, 3, name="lor") as rs:
        lor = _drive(lambda s: rs.infer(s, 5.0), clients, seconds)
    engines = [factory(f"rr{k}") for k in costs]
    for e in engines:
        e.warmup()
    turn = itertools.cycle(engines)
    lock = threading.Lock()

    def round_robin(s: Any) -> Any:
        with lock:
            e = next(turn)
        return e.infer(s, 5.0)

    rr = _drive(round_robin, clients, seconds)
    for e in engines:
        e.close()
    print(f"one slow replica of 3, {clients} clients, {seconds:g} s:")
    print(f"  least-outstanding: {lor[0]:.0f} req/s, p99 {lor[1]:.2f} ms")
    print(f"  round-robin:       {rr[0]:.0f} req/s, p99 {rr[1]:.2f} ms")
    print(f"  ratio throughput {lor[0] / rr[0]:.2f}x, p99 {rr[1] / lor[1]:.2f}x lower")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    balancer_cost(args.rounds)
    routing(args.clients, args.seconds)


if __name__ == "__main__":
    main()
