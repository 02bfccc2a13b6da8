"""Normalization in one Triton kernel: feature columns -> scaled, normalized, padded float32.

The policy network's first step on the GPU (``interfaces.torch_model``: ``(x - mean) / std``,
clipped). Input is one float32 tensor ``columns`` of shape (C, N): row ``c`` holds feature
column ``c`` for all N rows (any strides, so a row-major (N, C) feature matrix passes as its
transpose). Output is row-major (N_pad, D_pad), what a matmul wants::

    out[r, c] = clamp((columns[c, r] * scale[c] - mean[c]) * inv_std[c], -clip, clip)
    out[r, c] = 0    for r >= N (padded rows) or c >= C (padded columns)

One pass: each program reads a (BLOCK_C, BLOCK_R) tile, coalesced along N, and writes it
transposed; the scale, normalization, clamp, transpose and zero padding never touch memory in
between. It is memory-bound: 4 bytes read per value and 4 written (plus padding).

``normalize_reference`` is the torch definition the kernel is tested against; results agree
to float32 rounding (rtol 1e-6, atol 1e-6: both compute the same three operations in float32,
and the only difference allowed is an FMA contraction by the compiler).
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from system0.errors import InvalidArgument

__all__ = ["normalize", "normalize_reference"]


@triton.jit  # type: ignore[misc]
def _normalize_kernel(
    cols_ptr,
    scale_ptr,
    mean_ptr,
    inv_std_ptr,
    out_ptr,
    C,
    N,
    N_pad,
    D_pad,
    stride_c,
    stride_n,
    clip,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):  # type: ignore[no-untyped-def]
    pid = tl.program_id(0)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    cs = tl.arange(0, BLOCK_C)
    in_col = cs < C
    valid = in_col[:, None] & (rows[None, :] < N)
    x = tl.load(cols_ptr + cs[:, None] * stride_c + rows[None, :] * stride_n, mask=valid, other=0.0)
    scale = tl.load(scale_ptr + cs, mask=in_col, other=0.0)
    mean = tl.load(mean_ptr + cs, mask=in_col, other=0.0)
    inv = tl.load(inv_std_ptr + cs, mask=in_col, other=0.0)
    y = (x * scale[:, None] - mean[:, None]) * inv[:, None]
    y = tl.minimum(tl.maximum(y, -clip), clip)
    y = tl.where(valid, y, 0.0)
    # store transposed: out[r, c]; padded rows and columns receive the zeros above
    out_mask = (cs[:, None] < D_pad) & (rows[None, :] < N_pad)
    tl.store(out_ptr + rows[None, :] * D_pad + cs[:, None], y, mask=out_mask)


def _check(columns: Any, scale: Any, mean: Any, inv_std: Any, pad_rows: int, pad_cols: int) -> None:
    if columns.ndim != 2 or columns.dtype != torch.float32:
        raise InvalidArgument(
            f"columns must be float32 (C, N), got {columns.dtype} {tuple(columns.shape)}"
        )
    c, n = columns.shape
    for name, v in (("scale", scale), ("mean", mean), ("inv_std", inv_std)):
        if v.shape != (c,) or v.dtype != torch.float32:
            raise InvalidArgument(f"{name} must be float32 of shape ({c},), got {tuple(v.shape)}")
    if pad_rows < n or pad_cols < c:
        raise InvalidArgument(
            f"padding ({pad_rows}, {pad_cols}) is smaller than the data ({n}, {c})"
        )


def normalize_reference(
    columns: Any, scale: Any, mean: Any, inv_std: Any, clip: float, pad_rows: int, pad_cols: int
) -> Any:
    """The torch definition of :func:`normalize`."""
    _check(columns, scale, mean, inv_std, pad_rows, pad_cols)
    c, n = columns.shape
    y = ((columns * scale[:, None] - mean[:, None]) * inv_std[:, None]).clamp(-clip, clip)
    out = torch.zeros((pad_rows, pad_cols), dtype=torch.float32, device=columns.device)
    out[:n, :c] = y.T
    return out


def normalize(
    columns: Any,
    scale: Any,
    mean: Any,
    inv_std: Any,
    clip: float,
    pad_rows: int,
    pad_cols: int,
    *,
    block_r: int = 128,
) -> Any:
    """Run the kernel; returns a new (pad_rows, pad_cols) float32 tensor on columns' device."""
    _check(columns, scale, mean, inv_std, pad_rows, pad_cols)
    c, n = columns.shape
    # any strides: a row-major (N, C) batch passes as its transpose without a copy
    out = torch.empty((pad_rows, pad_cols), dtype=torch.float32, device=columns.device)
    block_c = max(16, triton.next_power_of_2(pad_cols))
    grid = (triton.cdiv(pad_rows, block_r),)
    _normalize_kernel[grid](
        columns,
        scale,
        mean,
        inv_std,
        out,
        c,
        n,
        pad_rows,
        pad_cols,
        columns.stride(0),
        columns.stride(1),
        float(clip),
        BLOCK_R=block_r,
        BLOCK_C=block_c,
    )
    return out
