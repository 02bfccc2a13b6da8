"""Featurization in one Triton kernel: decoded GameState columns -> the documented features.

It computes the layout of ``rust/features`` (``system0.data.serialization.FEATURE_NAMES``),
row-major float32 of shape (N_pad, 12 + vocabulary size), from two inputs:

* ``dense``: float64 (12, N), the dense GameState columns in feature order (position x, y,
  health, mana, cooldowns q w e r d f, vision score, gold advantage), as the codec decodes
  them: one Arrow column per field, so row ``c`` may be any column view (any strides);
* ``items``: int32 (N, ``MAX_INVENTORY``), each row the vocabulary indices of the items held,
  ``-1`` for an empty slot.

::

    out[r, c]      = float32(dense[c, r] / scale[c])            c < 12
    out[r, 12 + v] = 1.0 if v in items[r, :] else 0.0           v < len(ITEM_VOCABULARY)
    out[r, :]      = 0.0                                         r >= N (padding rows)

``scale`` is the codec's (``serialization.DENSE_SCALES``; 1 for positions). The division is
done in float64 and then rounded to float32, as the Rust features do (``(value / scale) as f32``);
IEEE division and round-to-nearest make the two results **bit-identical**, not merely close.
:func:`kernel_inputs` builds both inputs from a decoded batch (no Python loop over rows), and
:func:`featurize_reference` is the same definition in torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import triton
import triton.language as tl

from system0.data.models import ITEM_VOCABULARY, MAX_INVENTORY
from system0.data.serialization import DENSE_SCALES, FEATURE_NAMES
from system0.errors import ValidationError

__all__ = ["DENSE_COLUMNS", "dense_scales", "featurize", "featurize_reference", "kernel_inputs"]

DENSE_COLUMNS: tuple[str, ...] = FEATURE_NAMES[: len(FEATURE_NAMES) - len(ITEM_VOCABULARY)]
"""The dense feature columns, which are also the decoded batch's column names."""
_N_DENSE = len(DENSE_COLUMNS)
_N_ITEMS = len(ITEM_VOCABULARY)
_N_FEATURES = len(FEATURE_NAMES)
_ITEM_INDEX = {name: i for i, name in enumerate(ITEM_VOCABULARY)}


def dense_scales() -> tuple[float, ...]:
    """The divisor of each dense column, the codec's own (positions are already in [0, 1]:
    divided by 1)."""
    return DENSE_SCALES


@triton.jit  # type: ignore[misc]
def _featurize_kernel(
    dense_ptr,
    scale_ptr,
    items_ptr,
    out_ptr,
    N,
    N_pad,
    stride_dc,
    stride_dn,
    stride_ir,
    stride_ik,
    N_DENSE: tl.constexpr,
    N_ITEMS: tl.constexpr,
    MAX_INV: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):  # type: ignore[no-untyped-def]
    pid = tl.program_id(0)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_D)
    real = rows < N
    is_dense = cols < N_DENSE
    dm = real[:, None] & is_dense[None, :]
    x = tl.load(
        dense_ptr + cols[None, :] * stride_dc + rows[:, None] * stride_dn, mask=dm, other=0.0
    )
    scale = tl.load(scale_ptr + cols, mask=is_dense, other=1.0)
    dense = (x / scale[None, :]).to(tl.float32)  # float64 division, then one rounding
    # column 12 + v is item v: a row holds it when any of its slots names v (-1 never does)
    item = cols - N_DENSE
    is_item = (item >= 0) & (item < N_ITEMS)
    hot = tl.zeros((BLOCK_R, BLOCK_D), dtype=tl.int32)
    for k in tl.static_range(MAX_INV):
        idx = tl.load(items_ptr + rows * stride_ir + k * stride_ik, mask=real, other=-1)
        hot = hot | (idx[:, None] == item[None, :]).to(tl.int32)
    multi = tl.where((hot != 0) & is_item[None, :], 1.0, 0.0)
    y = tl.where(is_dense[None, :], dense, multi)
    y = tl.where(real[:, None], y, 0.0)
    n_feat = N_DENSE + N_ITEMS
    mask = (rows[:, None] < N_pad) & (cols[None, :] < n_feat)
    tl.store(out_ptr + rows[:, None] * n_feat + cols[None, :], y, mask=mask)


def _check(dense: Any, items: Any, pad_rows_to: int | None) -> int:
    if dense.ndim != 2 or dense.shape[0] != _N_DENSE or dense.dtype != torch.float64:
        raise ValidationError(
            f"dense must be float64 ({_N_DENSE}, N), got {dense.dtype} {tuple(dense.shape)}; "
            "build it with kernel_inputs(batch)"
        )
    n = dense.shape[1]
    if items.shape != (n, MAX_INVENTORY) or items.dtype != torch.int32:
        raise ValidationError(
            f"items must be int32 ({n}, {MAX_INVENTORY}), got {items.dtype} "
            f"{tuple(items.shape)}; build it with kernel_inputs(batch)"
        )
    if items.device != dense.device:
        raise ValidationError(f"dense is on {dense.device} but items on {items.device}")
    if n and (int(items.min()) < -1 or int(items.max()) >= _N_ITEMS):
        raise ValidationError(
            f"items must be vocabulary indices in [0, {_N_ITEMS}) or -1 for an empty slot, "
            f"got values in [{int(items.min())}, {int(items.max())}]"
        )
    rows = n if pad_rows_to is None else pad_rows_to
    if rows < n:
        raise ValidationError(f"pad_rows_to={pad_rows_to} is smaller than the batch ({n} rows)")
    return rows


def _scales(device: Any) -> Any:
    return torch.tensor(dense_scales(), dtype=torch.float64, device=device)


def featurize_reference(dense: Any, items: Any, pad_rows_to: int | None = None) -> Any:
    """The torch definition of :func:`featurize`."""
    rows = _check(dense, items, pad_rows_to)
    n = dense.shape[1]
    out = torch.zeros((rows, _N_FEATURES), dtype=torch.float32, device=dense.device)
    out[:n, :_N_DENSE] = (dense / _scales(dense.device)[:, None]).T.to(torch.float32)
    r, k = torch.nonzero(items >= 0, as_tuple=True)
    out[r, _N_DENSE + items[r, k].long()] = 1.0
    return out


def featurize(dense: Any, items: Any, pad_rows_to: int | None = None, *, block_r: int = 64) -> Any:
    """Run the kernel; returns a new (rows, len(FEATURE_NAMES)) float32 tensor on dense's
    device, ``rows`` = N or ``pad_rows_to`` (the padding rows are zeros)."""
    rows = _check(dense, items, pad_rows_to)
    out = torch.empty((rows, _N_FEATURES), dtype=torch.float32, device=dense.device)
    if rows == 0:
        return out
    grid = (triton.cdiv(rows, block_r),)
    _featurize_kernel[grid](
        dense,
        _scales(dense.device),
        items,
        out,
        dense.shape[1],
        rows,
        dense.stride(0),
        dense.stride(1),
        items.stride(0),
        items.stride(1),
        N_DENSE=_N_DENSE,
        N_ITEMS=_N_ITEMS,
        MAX_INV=MAX_INVENTORY,
        BLOCK_R=block_r,
        BLOCK_D=triton.next_power_of_2(_N_FEATURES),
    )
    return out


def kernel_inputs(batch: Any, device: Any = "cpu") -> tuple[Any, Any]:
    """``(dense, items)`` of a GameState batch (a ``DecodedBatch`` or any Arrow record batch,
    or a TrainingSample batch's ``state`` column), as :func:`featurize` reads them."""
    import pyarrow as pa

    rb = pa.record_batch(batch)
    table: Any = rb.column("state") if "state" in rb.schema.names else rb

    def column(name: str) -> Any:
        try:
            col = table.field(name) if isinstance(table, pa.StructArray) else table.column(name)
        except KeyError:
            raise ValidationError(f"batch has no column {name!r}; pass a GameState batch") from None
        if col.null_count:
            raise ValidationError(f"column {name!r} holds nulls; features need complete rows")
        return col

    dense = np.stack([column(n).to_numpy(zero_copy_only=False) for n in DENSE_COLUMNS])
    inv = column("inventory")
    offsets = inv.offsets.to_numpy()
    dictionary = inv.values.dictionary.to_pylist()
    unknown = [name for name in dictionary if name not in _ITEM_INDEX]
    if unknown:
        raise ValidationError(f"inventory items {unknown} are not in ITEM_VOCABULARY")
    # the batch's own dictionary may differ from the vocabulary: map it once, not per row
    remap = np.array([_ITEM_INDEX[name] for name in dictionary], dtype=np.int32)
    keys = inv.values.indices.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    if lengths.size and lengths.max() > MAX_INVENTORY:
        raise ValidationError(f"a row holds {lengths.max()} items, more than {MAX_INVENTORY}")
    n = len(lengths)
    row = np.repeat(np.arange(n), lengths)
    slot = np.arange(len(row)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    items = np.full((n, MAX_INVENTORY), -1, dtype=np.int32)
    items[row, slot] = remap[keys.astype(np.int64)]
    return (
        torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float64)).to(device),
        torch.from_numpy(items).to(device),
    )
