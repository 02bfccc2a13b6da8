"""How long the engine holds the GIL per request, outside the model call, measured by a second
Python thread that spins (counts loop turns) while the engine serves.

    python benches/inference_gil.py [--seconds 2] [--tick 64] [--rounds 3]

Three phases of the same length: the spinner alone (its rate r0: the whole GIL); the spinner
while the main thread submits ticks of GameState bytes (``submit_many_bytes``) and reads their
answers; the spinner while the main thread calls the model directly on the same feature
matrices, tick by tick (what the model itself costs under the GIL). The GIL time the spinner
lost in each serving phase is ``seconds * (1 - r / r0)``; the engine's own share per request is
the engine phase's loss minus the model's, per request answered. Prints the figures; the
issue's goal is none outside the model call (a fraction of a microsecond per request here is
the caller's own ``submit``/``result`` calls, which hold the GIL by nature).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable

from system0.data.serialization import featurize_requests
from system0.game.policy import load_policy
from system0.interfaces.inference_engine import InferenceEngine

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "gates"))
from gate_request import states


def spin_gaps(seconds: float, work: Callable[[threading.Event], int]) -> tuple[float, int]:
    """Nanoseconds per second that a spinning thread could not run (gaps of over 2 us between
    its loop turns: another thread held the GIL, or the OS ran something else) while ``work``
    ran, and how many requests ``work`` served."""
    stop = threading.Event()
    lost = [0]
    clock = time.perf_counter_ns

    def spin() -> None:
        gap, last = 0, clock()
        while not stop.is_set():
            t = clock()
            if t - last > 2000:
                gap += t - last
            last = t
        lost[0] = gap

    t = threading.Thread(target=spin)
    start = time.perf_counter()
    t.start()
    served = work(stop)
    stop.wait(max(0.0, seconds - (time.perf_counter() - start)))
    stop.set()
    t.join()
    return lost[0] / (time.perf_counter() - start), served


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--tick", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = load_policy("numpy")
    ticks = [[json.dumps(s).encode() for s in states(args.tick, seed=k)] for k in range(8)]
    matrices = [featurize_requests([json.loads(b) for b in t]).matrix for t in ticks]
    eng = InferenceEngine(model, max_batch=args.tick, max_wait=0.0005, name="gil-bench")
    eng.warmup()
    secs = args.seconds

    def idle(stop: threading.Event) -> int:
        stop.wait(secs)
        return 0

    def engine(stop: threading.Event) -> int:
        end, served, k = time.perf_counter() + secs, 0, 0
        while time.perf_counter() < end:
            for f in eng.submit_many_bytes(ticks[k % 8], 10.0):
                f.result()
            served += args.tick
            k += 1
            time.sleep(0.0005)  # a game loop between ticks: the GIL is free for the spinner
        return served

    def direct(stop: threading.Event) -> int:
        end, served, k = time.perf_counter() + secs, 0, 0
        while time.perf_counter() < end:
            model.infer(matrices[k % 8]).argmax(axis=1)
            served += args.tick
            k += 1
            time.sleep(0.0005)
        return served

    # a short switch interval: the spinner hands the GIL over within 20 us of being asked,
    # so that what it loses is the time others hold the GIL, not the 5 ms default's wait
    sys.setswitchinterval(20e-6)
    runs: list[tuple[float, float, float]] = []
    for _ in range(args.rounds):  # interleaved: a noisy neighbour hurts every phase alike
        base, _ = spin_gaps(secs, idle)
        lost_eng, n_eng = spin_gaps(secs, engine)
        lost_dir, n_dir = spin_gaps(secs, direct)
        # ns of GIL per request: the phase's lost time per second over the idle phase's,
        # times the phase's length, over the requests it served
        runs.append((base, (lost_eng - base) * secs / n_eng, (lost_dir - base) * secs / n_dir))
    eng.close()
    runs.sort(key=lambda r: r[1] - r[2])
    base, per_req_eng, per_req_dir = runs[len(runs) // 2]  # the median round
    print(f"spinner alone: {base / 1e6:.2f} ms lost per second (the machine's own noise)")
    print(
        f"engine, submit_many_bytes ticks of {args.tick}: GIL taken {per_req_eng:,.0f} ns "
        "per request"
    )
    print(f"direct model.infer on the featurized ticks: GIL taken {per_req_dir:,.0f} ns/request")
    print(
        f"GIL held per request outside the model call: {per_req_eng - per_req_dir:,.0f} ns "
        "(the caller's submit and result calls included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
