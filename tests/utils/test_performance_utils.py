"""performance_utils against the numpy expressions it replaces."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from system0.errors import InvalidArgument
from system0.utils import performance_utils as pu

finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(0, 70), st.integers(1, 13)), elements=finite),
    st.floats(0.5, 10),
)
def test_normalize_matches_numpy(x: np.ndarray, clip: float) -> None:
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1], np.float32)
    std = np.arange(1, x.shape[1] + 1, dtype=np.float32)
    got = pu.normalize(x, mean, std, clip=clip)
    want = np.clip((x - mean.astype(np.float32)) * (1 / std), -clip, clip)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_normalize_rejects_bad_input() -> None:
    x = np.ones((4, 3), np.float32)
    with pytest.raises(InvalidArgument, match="float32"):
        pu.normalize(x.astype(np.float64), [0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="3 columns"):
        pu.normalize(np.ones((4, 2), np.float32), [0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="non-zero"):
        pu.normalize(x, [0, 0, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="overlaps"):
        pu.normalize(x, [0, 0, 0], [1, 1, 1], out=x)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty_like(x)
        ro.flags.writeable = False
        pu.normalize(x, [0, 0, 0], [1, 1, 1], out=ro)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 300), elements=finite))
def test_int8_matches_numpy_rint(x: np.ndarray) -> None:
    if not np.any(x):
        with pytest.raises(ValueError, match="all zeros"):
            pu.quantize_int8(x)
        return
    q = pu.quantize_int8(x)
    scale = max(np.float32(np.abs(x).max()) / np.float32(127.0), np.finfo(np.float32).tiny)
    assert q.scale == pytest.approx(float(scale), rel=1e-6)
    want = np.clip(np.rint(x * np.float32(1 / np.float32(q.scale))), -127, 127).astype(np.int8)
    # one step of difference where x / scale lands within float error of a .5 boundary
    assert np.abs(q.values.astype(int) - want.astype(int)).max() <= 1
    assert np.abs(q.dequantize() - x).max() <= q.scale * 0.5001 + 1e-6


def test_int8_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        pu.quantize_int8(np.array([1.0, np.nan], np.float32))


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 300), elements=st.floats(width=32)))
def test_fp16_bit_identical_to_numpy(x: np.ndarray) -> None:
    got = pu.to_fp16(x)
    want = x.astype(np.float16)
    assert got.view(np.uint16).tolist() == want.view(np.uint16).tolist() or np.array_equal(
        got, want, equal_nan=True
    )
    np.testing.assert_array_equal(pu.from_fp16(want), want.astype(np.float32))


@given(st.binary(max_size=2000), st.integers(0, 2000))
def test_checksum_streams_and_differs_from_crc32(data: bytes, cut: int) -> None:
    cut = min(cut, len(data))
    assert pu.checksum(data[cut:], pu.checksum(data[:cut])) == pu.checksum(data)
    if data:
        flipped = bytes([data[0] ^ 1]) + data[1:]
        assert pu.checksum(flipped) != pu.checksum(data)


def test_checksum_of_array_is_checksum_of_its_bytes() -> None:
    a = np.arange(1000, dtype=np.float32).reshape(10, 100)
    assert pu.checksum(a) == pu.checksum(a.tobytes())
    assert pu.checksum(a.T) == pu.checksum(np.ascontiguousarray(a.T).tobytes())
    assert pu.checksum(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert pu.checksum(b"123456789") != zlib.crc32(b"123456789")


def test_int8_subnormal_values_quantize_to_zero_not_fail() -> None:
    q = pu.quantize_int8(np.array([1.4e-44, -2.8e-44], np.float32))
    assert q.scale > 0 and q.values.tolist() == [0, 0]
