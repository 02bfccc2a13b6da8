"""Hot numeric helpers from the Rust core: normalization, int8/fp16 quantization, checksums.

Each function is one pass over contiguous memory in Rust (vectorized by the compiler, F16C for
fp16, the CRC32 instruction for checksums), releasing the GIL for large arrays. They take and
return numpy arrays; the Rust side checks contiguity, writability and overlap, and this facade
checks dtypes and shapes so that a mistake names the argument. ``benches/gates/gate_perf_utils.py``
times each against the numpy expression a user would write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from system0 import _core
from system0.errors import InvalidArgument

__all__ = [
    "QuantizedInt8",
    "checksum",
    "dequantize_int8",
    "from_fp16",
    "normalize",
    "quantize_int8",
    "to_fp16",
]

F32 = npt.NDArray[np.float32]


def _f32(name: str, a: npt.ArrayLike) -> F32:
    arr = np.asarray(a)
    if arr.dtype != np.float32:
        raise InvalidArgument(
            f"{name} must be float32, got {arr.dtype}; convert with .astype(np.float32)"
        )
    return np.ascontiguousarray(arr)


def _out(
    name: str,
    out: npt.NDArray[np.generic] | None,
    like: npt.NDArray[np.generic],
    dtype: type[np.generic],
) -> npt.NDArray[np.generic]:
    if out is None:
        return np.empty(like.shape, dtype=dtype)
    if out.dtype != dtype or out.shape != like.shape:
        raise InvalidArgument(
            f"{name} must be {np.dtype(dtype)} of shape {like.shape}, got {out.dtype} {out.shape}"
        )
    return out


def normalize(
    x: npt.ArrayLike,
    mean: npt.ArrayLike,
    std: npt.ArrayLike,
    *,
    clip: float = float("inf"),
    out: F32 | None = None,
) -> F32:
    """``clip((x - mean) / std, -clip, clip)`` per column of a float32 matrix (rows x columns).

    ``mean`` and ``std`` hold one value per column; a ``std`` of zero is refused (it would
    make the column infinite). ``x`` may also be one row (a vector of ``len(mean)`` values).
    """
    src = _f32("x", x)
    m = np.asarray(mean, dtype=np.float32).ravel()
    s = np.asarray(std, dtype=np.float32).ravel()
    if m.shape != s.shape or m.size == 0:
        raise InvalidArgument(
            f"mean and std must have the same non-zero length, got {m.size}, {s.size}"
        )
    if src.shape[-1:] != (m.size,):
        raise InvalidArgument(f"x must have {m.size} columns (one per mean), got shape {src.shape}")
    if not np.all(np.isfinite(s)) or np.any(s == 0):
        raise InvalidArgument("std must be finite and non-zero in every column")
    dst = _out("out", out, src, np.float32)
    _core.perf_normalize(src, dst, m.tolist(), (1.0 / s).tolist(), clip)
    return dst  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class QuantizedInt8:
    """Symmetric per-tensor int8: ``values * scale`` approximates the original floats."""

    values: npt.NDArray[np.int8]
    scale: float

    def dequantize(self) -> F32:
        return dequantize_int8(self.values, self.scale)


def quantize_int8(x: npt.ArrayLike, scale: float | None = None) -> QuantizedInt8:
    """Quantize float32 to int8 with ``scale = absmax / 127`` unless a scale is given.

    Rounds half to even (as ``numpy.rint``) and saturates at +-127. A tensor holding NaN or
    infinity, or an all-zero tensor without a given scale, raises ``ValueError``.
    """
    src = _f32("x", x)
    peak = _core.perf_absmax(src)
    if not np.isfinite(peak):
        raise InvalidArgument("x holds NaN or infinity; int8 quantization needs finite values")
    if scale is None:
        if peak == 0.0:
            raise InvalidArgument("x is all zeros; pass an explicit scale to quantize it")
        # float32 like the kernel; subnormal peaks would give a zero scale, so the scale is at
        # least the smallest normal float32 (such values all quantize to 0, within half a step)
        scale = max(float(np.float32(peak) / np.float32(127.0)), float(np.finfo(np.float32).tiny))
    if not (np.isfinite(scale) and scale > 0):
        raise InvalidArgument(f"scale must be finite and > 0, got {scale}")
    dst = np.empty(src.shape, dtype=np.int8)
    _core.perf_quantize_int8(src, dst, float(scale))
    return QuantizedInt8(dst, float(scale))


def dequantize_int8(q: npt.ArrayLike, scale: float, *, out: F32 | None = None) -> F32:
    """``q * scale`` as float32."""
    src = np.ascontiguousarray(np.asarray(q))
    if src.dtype != np.int8:
        raise InvalidArgument(f"q must be int8, got {src.dtype}")
    dst = _out("out", out, src, np.float32)
    _core.perf_dequantize_int8(src, dst, float(scale))
    return dst  # type: ignore[return-value]


def to_fp16(x: npt.ArrayLike) -> npt.NDArray[np.float16]:
    """float32 to float16, rounding to nearest even (bit-identical to ``astype(np.float16)``)."""
    src = _f32("x", x)
    bits = np.empty(src.shape, dtype=np.uint16)
    _core.perf_to_fp16(src, bits)
    return bits.view(np.float16)


def from_fp16(h: npt.ArrayLike) -> F32:
    """float16 to float32 (exact)."""
    src = np.ascontiguousarray(np.asarray(h))
    if src.dtype != np.float16:
        raise InvalidArgument(f"h must be float16, got {src.dtype}")
    dst = np.empty(src.shape, dtype=np.float32)
    _core.perf_from_fp16(src.view(np.uint16), dst)
    return dst


def checksum(data: bytes | bytearray | memoryview | npt.NDArray[np.generic], seed: int = 0) -> int:
    """CRC-32C of the bytes of ``data`` (an array's raw memory in C order), from ``seed``.

    Feed chunks in order, passing the previous result as ``seed``, to checksum a stream.
    """
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).data.cast("B")
    elif isinstance(data, memoryview) and data.format != "B":
        data = data.cast("B")
    return _core.perf_crc32c(data, seed)
