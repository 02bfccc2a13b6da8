"""performance_utils against the numpy a user would write, on a batch of 4096 feature rows.

Peers: ``np.clip((x - mean) / std, ...)`` for normalization, ``np.rint`` + ``clip`` +
``astype(int8)`` (after ``np.abs(x).max()``) for int8, ``astype(np.float16)`` for fp16, and
``zlib.crc32`` for checksums (numpy has none; zlib is what a user reaches for).
"""

from __future__ import annotations

import zlib

import numpy as np
from ratio import Gate

from system0.utils import performance_utils as pu

ROWS, COLS = 4096, 12


def gates() -> list[Gate]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, COLS)).astype(np.float32)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    out = np.empty_like(x)
    flat = x.ravel()
    raw = x.tobytes() * 16  # 3 MiB, a small model's weights

    def norm_ours(n: int) -> None:
        for _ in range(n):
            pu.normalize(x, mean, std, clip=5.0, out=out)

    def norm_peer(n: int) -> None:
        for _ in range(n):
            np.clip((x - mean) / std, -5.0, 5.0, out=out)

    def q_ours(n: int) -> None:
        for _ in range(n):
            pu.quantize_int8(flat)

    def q_peer(n: int) -> None:
        for _ in range(n):
            scale = np.abs(flat).max() / 127.0
            np.clip(np.rint(flat / scale), -127, 127).astype(np.int8)

    def h_ours(n: int) -> None:
        for _ in range(n):
            pu.to_fp16(flat)

    def h_peer(n: int) -> None:
        for _ in range(n):
            flat.astype(np.float16)

    def c_ours(n: int) -> None:
        for _ in range(n):
            pu.checksum(raw)

    def c_peer(n: int) -> None:
        for _ in range(n):
            zlib.crc32(raw)

    return [
        Gate(
            "perf_utils: normalize 4096x12 f32",
            norm_ours,
            norm_peer,
            "numpy clip",
            1.5,
            3.0,
            n=2000,
            rounds=7,
        ),
        Gate(
            "perf_utils: quantize int8 49k f32",
            q_ours,
            q_peer,
            "numpy rint",
            1.2,  # two passes (absmax, then quantize) against numpy's four; measured 1.8-2.0x
            4.0,
            n=1000,
            rounds=7,
        ),
        Gate(
            "perf_utils: to fp16 49k f32",
            h_ours,
            h_peer,
            "numpy astype",
            1.5,
            3.0,
            n=2000,
            rounds=7,
        ),
        Gate("perf_utils: checksum 3 MiB", c_ours, c_peer, "zlib.crc32", 2.0, 5.0, n=50, rounds=7),
    ]
