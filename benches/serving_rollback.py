"""Blue/green rollback under concurrent load: switch time, failed requests, mixed answers.

    python benches/serving_rollback.py [--clients 4] [--cycles 50] [--reloads 5] [--fsync always]

A deployment serves the shipped policy (v1) with a second version (v2, the same network with
its output layer shifted) deployed into the idle slot; ``--clients`` threads submit ticks of
six GameState bodies in a closed loop while the main thread promotes and rolls back
``--cycles`` times. Reported: the time traffic's reference took to move (the switch proper),
the wall time of each ``rollback()`` call (with its audit ledger entry, fsync as given), the
requests answered, failed and answered by a mixed version (all must be zero).

The peer is what a server without a warm previous version does to roll back (Ray Serve,
KServe and TorchServe keep none): load the previous version's weights from the registry,
build its engine and warm it up, then switch; timed ``--reloads`` times under the same load,
and the ratio to the warm rollback printed. Also printed: the inline guards' cost per answer
(``Guards.apply`` over a 32-row tick, median). Exits 1 when traffic took >= 10 ms to move
(from the ``rollback()`` call to the reference written; the durable audit entry follows the
switch and is reported beside it), a request failed or a call mixed versions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from system0 import _core
from system0.data.serialization import featurize_requests
from system0.errors import Overloaded
from system0.game.policy import policy_weights_path
from system0.game.simulator import MatchSimulator
from system0.interfaces.model_interface import AIModelInterface, MLPWeights, load_mlp, save_mlp
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring
from system0.serving.deployment import Deployment
from system0.serving.engine_io import state_engine
from system0.serving.guards import GuardRules, Guards
from system0.serving.registry import ModelRegistry, warm_up

GUARDS = {
    "version": 1,
    "rules": [
        {
            "name": "no-buy-without-gold",
            "actions": ["buy"],
            "deny_when": [{"field": "gold_advantage", "op": "<", "value": 0}],
        },
        {
            "name": "no-cast-on-cooldown",
            "actions": ["cast"],
            "deny_when": [{"field": "slot_cooldown", "op": ">", "value": 0}],
        },
    ],
}


def bodies(n: int) -> list[bytes]:
    out: list[bytes] = []
    for tick in MatchSimulator(seed=11).run(ticks=-(-n // 6)):
        out.extend(json.dumps(s).encode() for s in tick.states)
    return out[:n]


def shifted(mlp: MLPWeights) -> MLPWeights:
    b = list(mlp.biases)
    b[-1] = b[-1] + np.float32(0.25)  # another version: another content hash, same shape
    return MLPWeights(mlp.weights, tuple(b), mlp.mean, mlp.std, mlp.clip, mlp.activation)


def engine(model: AIModelInterface) -> Any:
    return state_engine(model, max_batch=32, buckets=(1, 8, 32), max_wait=0.001)


def accept(model: AIModelInterface) -> None:
    """Both versions are trusted here: the benchmark times switching, not golden sets."""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--fsync", choices=("always", "interval", "never"), default="always")
    args = ap.parse_args()
    fsync: Literal["always", "interval", "never"] = args.fsync
    tmp = Path(tempfile.mkdtemp(prefix="s0-rollback-"))
    registry = ModelRegistry(tmp / "registry")
    registry.publish("policy", policy_weights_path())
    (tmp / "w").mkdir()
    registry.publish("policy", save_mlp(shifted(load_mlp(policy_weights_path())), tmp / "w"))
    ledger = AuditLedger.open(tmp / "audit", keyring=Keyring.generate(), fsync=fsync)
    dep = Deployment("policy", registry, engine_factory=engine, golden_check=accept, audit=ledger)
    dep.deploy("v1")
    dep.promote()
    dep.deploy("v2")
    dep.promote()  # v2 active, v1 the warm previous version

    tick = bodies(6)
    stop = threading.Event()
    stats = {"answered": 0, "failed": 0, "mixed": 0, "refused": 0}
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            try:
                got = [f.result(timeout=10) for f in dep.submit(tick, 1.0)]
            except Overloaded:
                with lock:
                    stats["refused"] += 1
                continue
            except Exception:
                with lock:
                    stats["failed"] += 1
                continue
            with lock:
                stats["answered"] += len(got)
                stats["mixed"] += len({a.version for a in got}) > 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    pointer: list[int] = []
    moved: list[int] = []
    calls: list[int] = []
    t0 = time.perf_counter()
    for _ in range(args.cycles):
        start = _core.now_ns()
        dep.rollback()  # v2 -> v1
        calls.append(_core.now_ns() - start)
        moved.append(dep.last_switch_at_ns - start)
        pointer.append(dep.last_switch_ns)
        time.sleep(0.005)
        dep.promote()  # v1 -> v2 again (rollback left v2 the candidate)
        time.sleep(0.005)
    switch_s = time.perf_counter() - t0

    # the peer: roll back by loading the previous version again, then switching
    reload_ns: list[float] = []
    for _ in range(args.reloads):
        start = _core.now_ns()
        model = registry.get("policy", "v1").load()
        e = engine(model)
        warm_up(e)
        reload_ns.append(_core.now_ns() - start + statistics.median(calls))
        e.close()
    stop.set()
    for t in threads:
        t.join(10)
    answered_per_s = stats["answered"] / max(switch_s, 1e-9)

    rules = Guards(GuardRules.from_dict(GUARDS), model="bench")
    tick32 = bodies(32)
    x = featurize_requests(tick32).matrix
    policy = registry.get("policy", "v1").load()
    outs = np.asarray(policy.infer(x), np.float32)
    guard_ns: dict[str, tuple[float, int]] = {}
    cases = {"policy's own actions": outs.argmax(axis=1), "every action in turn": np.arange(32) % 8}
    for label, acts in cases.items():
        a = np.asarray(acts, np.int64)
        vetoed = sum(v is not None for v in rules.apply(x, outs, a, tick32).vetoes)
        times = []
        for _ in range(2000):
            s = _core.now_ns()
            rules.apply(x, outs, a, tick32)
            times.append(_core.now_ns() - s)
        guard_ns[label] = (statistics.median(times), vetoed)
    dep.close()
    ledger.close()

    def ms(v: float) -> str:
        return f"{v / 1e6:.3f} ms"

    print(f"rollback under load: {args.clients} clients, {args.cycles} rollbacks, fsync={fsync}")
    print(
        f"  switch (reference moved): median {statistics.median(pointer):.0f} ns, "
        f"max {max(pointer):.0f} ns"
    )
    print(
        f"  traffic switched (call start to reference moved): median "
        f"{ms(statistics.median(moved))}, max {ms(max(moved))}"
    )
    print(
        f"  rollback() call incl. audit entry: median {ms(statistics.median(calls))}, "
        f"p99 {ms(float(np.percentile(calls, 99)))}, max {ms(max(calls))}"
    )
    print(
        f"  requests during switching: answered {stats['answered']} ({answered_per_s:.0f}/s), "
        f"failed {stats['failed']}, mixed-version calls {stats['mixed']}, "
        f"refused (Overloaded) {stats['refused']}"
    )
    med_reload = statistics.median(reload_ns)
    print(
        f"  peer, rollback by reload (load + engine + warm-up + switch): median "
        f"{ms(med_reload)}; warm rollback is {med_reload / statistics.median(calls):.0f}x faster"
    )
    for label, (med, vetoed) in guard_ns.items():
        print(
            f"  guards (2 rules), 32-row tick, {label} ({vetoed} vetoed): "
            f"{med / 1e3:.1f} us per tick, {med / 32:.0f} ns per answer"
        )
    ok = max(moved) < 10_000_000 and stats["failed"] == 0 and stats["mixed"] == 0
    print("PASS" if ok else "FAIL: a switch took >= 10 ms, a request failed or a call mixed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
