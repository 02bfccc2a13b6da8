"""Triton kernels on a GPU: time against torch eager and torch.compile, and bandwidth.

    python benches/gpu/bench_kernels.py [--rows 4194304] [--peak-gbs 3350] [--json out.json]

Featurization is memory-bound, so it is judged by achieved bandwidth (bytes read + written /
time) against the card's peak: the datasheet figure for known cards (or ``--peak-gbs``), and
the bandwidth of a plain device-to-device copy measured in the same run (what the card really
sustains). The issue's goal: >= 70 % of peak. The fused policy head is judged by time against
torch eager (goal >= 1.5x) and torch.compile of the same reference. Times are medians of
``triton.testing.do_bench``. Without a GPU it says so and exits 0 (nothing to measure).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# datasheet peak DRAM bandwidth, GB/s, by substring of torch.cuda.get_device_name()
PEAK_GBS = {
    "H200": 4800.0,
    "H100 80GB HBM3": 3350.0,  # SXM
    "H100 PCIe": 2000.0,
    "H100 NVL": 3900.0,
    "A100-SXM4-80GB": 2039.0,
    "A100 80GB PCIe": 1935.0,
    "A100-SXM4-40GB": 1555.0,
    "A100-PCIE-40GB": 1555.0,
    "L40S": 864.0,
    "L4": 300.0,
    "A10G": 600.0,
    "RTX 4090": 1008.0,
    "T4": 320.0,
}


def peak_for(name: str) -> float | None:
    for key, gbs in PEAK_GBS.items():
        if key in name:
            return gbs
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1 << 22)
    ap.add_argument("--head-rows", type=int, default=1 << 16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--actions", type=int, default=8)
    ap.add_argument("--peak-gbs", type=float, default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="time the head's launch configurations")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    try:
        import torch
        import triton.testing
    except ImportError as exc:
        print(f"skipped: {exc}; pip install 'system0[torch]'")
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device; these figures are taken on a GPU")
        return 0
    from system0.kernels.normalize import normalize, normalize_reference
    from system0.kernels.policy_head import policy_head, policy_head_reference

    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    bench = triton.testing.do_bench
    results: dict[str, Any] = {"device": name, "torch": torch.__version__}

    def compiled(fn: Any) -> Any:
        return None if args.no_compile else torch.compile(fn, dynamic=False)

    # --- normalization -------------------------------------------------------------------------
    c, n, d = 12, args.rows, 16
    g = torch.Generator(device=dev).manual_seed(0)
    cols = torch.randn((c, n), device=dev, generator=g) * 1000
    scale = torch.rand(c, device=dev, generator=g) * 0.01
    mean = torch.randn(c, device=dev, generator=g)
    inv = torch.rand(c, device=dev, generator=g) + 0.5
    feat_args = (cols, scale, mean, inv, 3.0, n, d)
    torch.testing.assert_close(normalize(*feat_args), normalize_reference(*feat_args))
    moved = (c * n + n * d) * 4  # bytes read + written
    t_kernel = bench(lambda: normalize(*feat_args))
    t_eager = bench(lambda: normalize_reference(*feat_args))
    ref_c = compiled(normalize_reference)
    t_comp = bench(lambda: ref_c(*feat_args)) if ref_c else float("nan")
    big = torch.empty(moved // 8, dtype=torch.float32, device=dev)  # copy moves 2x its size
    t_copy = bench(lambda: big.clone())
    copy_gbs = big.numel() * 4 * 2 / t_copy / 1e6
    gbs = moved / t_kernel / 1e6
    peak = args.peak_gbs or peak_for(name)
    results["normalize"] = {
        "rows": n,
        "kernel_ms": t_kernel,
        "eager_ms": t_eager,
        "compile_ms": t_comp,
        "achieved_gbs": gbs,
        "copy_gbs": copy_gbs,
        "peak_gbs": peak,
        "fraction_of_peak": gbs / peak if peak else None,
        "fraction_of_copy": gbs / copy_gbs,
    }

    # --- fused policy head --------------------------------------------------------------------
    m, k, a = args.head_rows, args.hidden, args.actions
    h = torch.randn((m, k), device=dev, generator=g)
    w = torch.randn((a, k), device=dev, generator=g) * 0.3
    b = torch.randn(a, device=dev, generator=g)
    p1, _ = policy_head(h, w, b)
    p2, _ = policy_head_reference(h, w, b)
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
    t_head = bench(lambda: policy_head(h, w, b))
    t_head_eager = bench(lambda: policy_head_reference(h, w, b))
    head_c = compiled(policy_head_reference)
    t_head_comp = bench(lambda: head_c(h, w, b)) if head_c else float("nan")
    results["policy_head"] = {
        "rows": m,
        "hidden": k,
        "actions": a,
        "kernel_ms": t_head,
        "eager_ms": t_head_eager,
        "compile_ms": t_head_comp,
        "speedup_vs_eager": t_head_eager / t_head,
        "speedup_vs_compile": t_head_comp / t_head,
    }
    # batch 1: launch-bound, the engine's latency case
    h1 = h[:1].contiguous()
    results["policy_head_batch1"] = {
        "kernel_ms": bench(lambda: policy_head(h1, w, b)),
        "eager_ms": bench(lambda: policy_head_reference(h1, w, b)),
    }

    if args.sweep:
        sweep = []
        for rows in (1, 64, m):
            hr = h[:rows].contiguous()
            eager_ms = bench(lambda hr=hr: policy_head_reference(hr, w, b))
            for bm in (16, 32, 64, 128, 256):
                for bk in (32, 64):
                    for nw in (1, 2, 4, 8):
                        cfg = {"block_m": bm, "block_k": bk, "num_warps": nw}
                        ms = bench(lambda hr=hr, cfg=cfg: policy_head(hr, w, b, **cfg))
                        sweep.append({"rows": rows, **cfg, "kernel_ms": ms, "eager_ms": eager_ms})
        results["policy_head_sweep"] = sweep
        for rows in (1, 64, m):
            best = sorted((r for r in sweep if r["rows"] == rows), key=lambda r: r["kernel_ms"])
            for r in best[:3]:
                print(
                    f"sweep rows {rows}: block_m {r['block_m']} block_k {r['block_k']} "
                    f"warps {r['num_warps']}: {r['kernel_ms']:.4f} ms "
                    f"(eager {r['eager_ms']:.4f} ms, {r['eager_ms'] / r['kernel_ms']:.2f}x)"
                )

    f, ph = results["normalize"], results["policy_head"]
    print(f"device: {name}   torch {torch.__version__}")
    print(
        f"normalize {n} rows: kernel {f['kernel_ms']:.3f} ms, eager {f['eager_ms']:.3f} ms, "
        f"compile {f['compile_ms']:.3f} ms; {gbs:.0f} GB/s = "
        + (f"{gbs / peak:.0%} of {peak:.0f} GB/s peak, " if peak else "peak unknown, ")
        + f"{gbs / copy_gbs:.0%} of measured copy ({copy_gbs:.0f} GB/s)  [goal >= 70% of peak]"
    )
    print(
        f"policy head {m}x{k}->{a}: kernel {ph['kernel_ms']:.4f} ms, eager "
        f"{ph['eager_ms']:.4f} ms ({ph['speedup_vs_eager']:.2f}x), compile "
        f"{ph['compile_ms']:.4f} ms ({ph['speedup_vs_compile']:.2f}x)  [goal >= 1.5x eager]"
    )
    b1 = results["policy_head_batch1"]
    print(f"policy head batch 1: kernel {b1['kernel_ms']:.4f} ms, eager {b1['eager_ms']:.4f} ms")
    if args.json:
        with open(args.json, "w") as fp:
            json.dump(results, fp, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
