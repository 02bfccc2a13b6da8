"""XLA switches for jax: flags, the persistent compilation cache, matmul precision.

jax is imported lazily. ``XLA_FLAGS`` is read once, when the XLA backend starts, so
:func:`set_xla_flags` must run before the first jax computation; it says so by raising
``RuntimeError`` when the backend is already up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from system0.errors import InvalidArgument

__all__ = [
    "bucket_for",
    "enable_compilation_cache",
    "require_jax",
    "set_precision",
    "set_xla_flags",
]

INSTALL = "pip install 'system0[jax]'"
PRECISIONS = ("default", "high", "highest")


def require_jax() -> Any:
    try:
        import jax
    except ImportError as exc:  # pragma: no cover - exercised on the light install
        raise ImportError(f"this needs jax; install it with {INSTALL}") from exc
    return jax


def _backend_started() -> bool:
    import sys

    xb = sys.modules.get("jax._src.xla_bridge")
    return bool(xb is not None and getattr(xb, "_backends", None))


def set_xla_flags(flags: Iterable[str]) -> str:
    """Append flags (``--xla_...``) to ``XLA_FLAGS``; returns the new value.

    Must run before jax starts its backend (the first array or jit call).
    """
    flags = list(flags)
    bad = [f for f in flags if not f.startswith("--xla")]
    if bad:
        raise InvalidArgument(f"XLA flags start with --xla, got {bad}")
    if _backend_started():
        raise RuntimeError("jax already started its backend; set XLA flags before any jax call")
    current = os.environ.get("XLA_FLAGS", "").split()
    merged = " ".join([*current, *(f for f in flags if f not in current)])
    os.environ["XLA_FLAGS"] = merged
    return merged


def enable_compilation_cache(path: str | os.PathLike[str], min_compile_secs: float = 0.0) -> None:
    """Keep compiled XLA programs on disk at ``path`` so a restart skips compilation."""
    jax = require_jax()
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.fspath(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def set_precision(precision: str) -> None:
    """Default matmul precision: ``default`` (fastest; bf16 passes on TPU/TF32 on GPU),
    ``high`` or ``highest`` (full float32)."""
    if precision not in PRECISIONS:
        raise InvalidArgument(f"precision must be one of {PRECISIONS}, got {precision!r}")
    require_jax().config.update("jax_default_matmul_precision", precision)


def bucket_for(rows: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds ``rows`` (buckets sorted ascending), else ``ValueError``."""
    for b in buckets:
        if rows <= b:
            return b
    raise InvalidArgument(f"batch of {rows} rows exceeds the largest bucket {buckets[-1]}")
