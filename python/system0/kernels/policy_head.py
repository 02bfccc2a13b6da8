"""The policy head in one Triton kernel: linear + bias + activation + softmax + argmax.

For hidden activations ``h`` (M, K), weights ``w`` (N, K) as in ``nn.Linear``, bias ``b`` (N,)::

    z = act(h @ w.T + b)          act: "none", "relu" or "tanh"
    probs = softmax(z, dim=1)     (M, N) float32
    action = argmax(z, dim=1)     (M,)   int32, the first index on ties

Eager torch runs this as four to five kernels with (M, N) intermediates in memory between
them; here each program keeps its rows' logits in registers from the matmul to the argmax.
N (the number of actions) is small, so one program holds all N columns (BLOCK_N >= N).

Tolerances against ``policy_head_reference`` (documented for the tests): probabilities agree to
rtol 1e-5, atol 1e-6 (the dot accumulates in float32 in another order); the argmax agrees
except where the top two logits are within 1e-5 of each other.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from system0.errors import InvalidArgument

__all__ = ["ACTIVATIONS", "policy_head", "policy_head_reference"]

ACTIVATIONS = {"none": 0, "relu": 1, "tanh": 2}


@triton.jit  # type: ignore[misc]
def _policy_head_kernel(
    h_ptr,
    w_ptr,
    b_ptr,
    probs_ptr,
    idx_ptr,
    M,
    N,
    stride_hm,
    stride_wn,
    K: tl.constexpr,  # the hidden size is fixed per model: one compile, a static K loop
    ACT: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):  # type: ignore[no-untyped-def]
    pid = tl.program_id(0)
    rm = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        h = tl.load(
            h_ptr + rm[:, None] * stride_hm + rk[None, :],
            mask=(rm[:, None] < M) & (rk[None, :] < K),
            other=0.0,
        )
        w = tl.load(
            w_ptr + rn[None, :] * stride_wn + rk[:, None],
            mask=(rn[None, :] < N) & (rk[:, None] < K),
            other=0.0,
        )
        acc += tl.dot(h, w, input_precision="ieee")
    bias = tl.load(b_ptr + rn, mask=rn < N, other=0.0)
    z = acc + bias[None, :]
    if ACT == 1:
        z = tl.maximum(z, 0.0)
    elif ACT == 2:
        e2 = tl.exp(2.0 * z)
        z = 1.0 - 2.0 / (e2 + 1.0)
    z = tl.where(rn[None, :] < N, z, float("-inf"))
    zmax = tl.max(z, axis=1)
    e = tl.exp(z - zmax[:, None])
    p = e / tl.sum(e, axis=1)[:, None]
    # first index of the maximum, as torch.argmax
    is_max = z == zmax[:, None]
    idx = tl.min(tl.where(is_max, rn[None, :], BLOCK_N), axis=1)
    row_ok = rm < M
    tl.store(probs_ptr + rm[:, None] * N + rn[None, :], p, mask=row_ok[:, None] & (rn[None, :] < N))
    tl.store(idx_ptr + rm, idx, mask=row_ok)


def _check(h: Any, w: Any, b: Any, activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise InvalidArgument(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    if h.ndim != 2 or w.ndim != 2 or b.ndim != 1:
        raise InvalidArgument("h must be (M, K), w (N, K) and b (N,)")
    if h.shape[1] != w.shape[1] or b.shape[0] != w.shape[0]:
        raise InvalidArgument(
            f"shapes do not chain: h {tuple(h.shape)}, w {tuple(w.shape)}, b {tuple(b.shape)}"
        )
    for name, t in (("h", h), ("w", w), ("b", b)):
        if t.dtype != torch.float32:
            raise InvalidArgument(f"{name} must be float32, got {t.dtype}")


def policy_head_reference(h: Any, w: Any, b: Any, activation: str = "none") -> tuple[Any, Any]:
    """The torch definition of :func:`policy_head` (eager: several kernels)."""
    _check(h, w, b, activation)
    z = torch.nn.functional.linear(h, w, b)
    if activation == "relu":
        z = torch.relu(z)
    elif activation == "tanh":
        z = torch.tanh(z)
    return torch.softmax(z, dim=1), torch.argmax(z, dim=1).to(torch.int32)


def policy_head(
    h: Any,
    w: Any,
    b: Any,
    activation: str = "none",
    *,
    block_m: int | None = None,
    block_k: int | None = None,
    num_warps: int = 4,
) -> tuple[Any, Any]:
    """Run the fused kernel; returns ``(probs (M, N) float32, action (M,) int32)``.

    ``block_m`` rows per program, ``block_k`` of the hidden size per step and ``num_warps``
    are the launch's tuning knobs (``benches/gpu/bench_kernels.py --sweep`` times them). The
    defaults come from that sweep on an H100: the whole hidden size in one step (up to 64),
    32 rows per program for the latency case, 128 for large batches."""
    _check(h, w, b, activation)
    m, k = h.shape
    n = w.shape[0]
    if block_m is None:
        block_m = 32 if m <= 1024 else 128
    if block_k is None:
        block_k = min(64, max(16, triton.next_power_of_2(k)))
    if n > 1024:
        raise InvalidArgument(f"the fused head holds all {n} outputs in registers; use <= 1024")
    h = h if h.stride(1) == 1 else h.contiguous()
    w = w if w.stride(1) == 1 else w.contiguous()
    probs = torch.empty((m, n), dtype=torch.float32, device=h.device)
    idx = torch.empty((m,), dtype=torch.int32, device=h.device)
    block_n = max(16, triton.next_power_of_2(n))
    grid = (triton.cdiv(m, block_m),)
    _policy_head_kernel[grid](
        h,
        w,
        b.contiguous(),
        probs,
        idx,
        m,
        n,
        h.stride(0),
        w.stride(0),
        k,
        ACT=ACTIVATIONS[activation],
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        num_warps=num_warps,
    )
    return probs, idx
