"""The inference engine over the demo policy on a CUDA device, side by side with the plain ways.

    python benches/gpu/bench_engine.py [--json out.json]

* batch-1 overhead: ``engine.infer(row)`` against ``model.infer(row)`` on the same CUDA model,
  p50 of calls timed one by one, alternating (the issue's gate: engine <= 2x the direct call);
* CUDA graphs: the same direct call with graphs captured against graphs off (eager launches);
* throughput: 4000 requests submitted at once to the engine (dynamic batching, max batch 64),
  and 4096 as ticks of 64 through ``submit_many``, against the same requests through
  ``ThreadPoolExecutor(4)`` calling the model per request (the issue's goal: >= 5x).

The engine rows are the CI gates' own (``engine_gates`` in benches/gates/gate_inference.py,
timed by benches/gates/ratio.py), run on the CUDA policy. Without a CUDA device it says so
and exits 0.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gates"))

from ratio import Gate, measure, report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    try:
        import torch
    except ImportError as exc:
        print(f"skipped: {exc}; pip install 'system0[torch]'")
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device; these figures are taken on a GPU")
        return 0
    from gate_inference import _rows, engine_gates

    from system0.game.policy import load_policy

    one_batch = _rows(1)
    graphs = load_policy("torch", device="cuda")
    eager = load_policy("torch", device="cuda", cuda_graph_batch_sizes=())

    def direct(n: int) -> None:
        for _ in range(n):
            graphs.infer(one_batch)

    def direct_eager(n: int) -> None:
        for _ in range(n):
            eager.infer(one_batch)

    gates = [
        *engine_gates(graphs, "gpu"),
        Gate("gpu: batch-1 CUDA graph vs eager", direct, direct_eager, "eager", 1.0, 1.0, 2000, 7),
    ]
    results = [measure(g) for g in gates]
    print(f"device: {torch.cuda.get_device_name()}   torch {torch.__version__}")
    print(report(results))
    r0 = results[0]
    print(f"engine overhead at batch 1: {(r0.ours_ns - r0.peer_ns) / 1e3:.1f} us [goal <= 30 us]")
    if args.json:
        out = {
            "device": torch.cuda.get_device_name(),
            "rows": [
                {"name": r.gate.name, "ours_ns": r.ours_ns, "peer_ns": r.peer_ns, "ratio": r.ratio}
                for r in results
            ],
        }
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
