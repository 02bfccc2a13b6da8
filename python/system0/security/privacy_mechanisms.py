"""OpenDP plumbing for :mod:`system0.security.privacy`: loading, fitting noise scales, checks.

Kept apart so that the accountant reads as policy (what is charged, when, what is recorded)
and this file as mechanism (how OpenDP is driven). Nothing here samples noise: OpenDP does.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from fractions import Fraction
from typing import Any, Literal

from system0.errors import ConfigError, ValidationError

__all__ = [
    "Mechanism",
    "accuracy95",
    "check_bounds",
    "check_categories",
    "check_delta",
    "check_epsilon",
    "exact_fraction",
    "fit",
    "floats",
    "fmt",
    "opendp",
]

Mechanism = Literal["laplace", "gaussian"]

_CACHE_LIMIT = 256  # measurements reused across releases with the same parameters

# OpenDP is imported lazily: it is an optional extra and costs ~100 ms to load.
_dp: Any = None
_dp_lock = threading.Lock()


def opendp() -> Any:
    global _dp
    if _dp is None:
        with _dp_lock:
            if _dp is None:
                try:
                    import opendp.prelude as dp
                except ImportError as exc:  # pragma: no cover - depends on the environment
                    raise ConfigError(
                        "differential privacy needs OpenDP, which is not installed; "
                        "install it with: pip install 'system0[privacy]'"
                    ) from exc
                dp.enable_features("contrib")  # why: see the module docstring
                _dp = dp
    return _dp


_measurements: dict[Hashable, tuple[Any, float]] = {}
_measurements_lock = threading.Lock()


def fit(
    key: Hashable,
    build: Callable[[float], Any],
    d_in: int,
    epsilon: float,
    delta: float,
    mechanism: Mechanism,
) -> tuple[Any, float]:
    """The measurement with the smallest noise scale whose proven loss is within the target.

    For pure DP the loss is proportional to 1/scale, so one probe gives the scale and a few
    nudges absorb OpenDP's conservative rounding. For the Gaussian the loss curve (zCDP turned
    into (epsilon, delta) at a fixed delta) has no closed inverse: OpenDP's binary search finds
    it. Either way the result is verified against OpenDP's map before use.
    """
    with _measurements_lock:
        hit = _measurements.get(key)
    if hit is not None:
        return hit
    dp = opendp()

    def loss(m: Any) -> float:
        out = m.map(d_in)
        return float(out[0]) if isinstance(out, tuple) else float(out)

    if mechanism == "gaussian":

        def chain(scale: float) -> Any:
            return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(build(scale)), delta)

        scale = float(dp.binary_search_param(chain, d_in=d_in, d_out=(epsilon, delta)))
        meas = chain(scale)
    else:
        scale = loss(build(1.0)) / epsilon
        meas = build(scale)
        for _ in range(64):
            got = loss(meas)
            if got <= epsilon:
                break
            scale *= (got / epsilon) * (1.0 + 1e-12)
            meas = build(scale)
    if loss(meas) > epsilon:  # pragma: no cover - a broken invariant, never silently accepted
        raise RuntimeError(f"could not fit a noise scale for epsilon={epsilon}")
    with _measurements_lock:
        if len(_measurements) >= _CACHE_LIMIT:
            del _measurements[next(iter(_measurements))]
        _measurements[key] = (meas, scale)
    return meas, scale


def exact_fraction(x: float) -> Fraction:
    # The shortest decimal that round-trips to x: what the caller typed (0.1 -> 1/10).
    return Fraction(repr(x))


def check_epsilon(epsilon: float, where: str) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise ValidationError(f"{where}: epsilon must be a number, got {epsilon!r}")
    eps = float(epsilon)
    if not math.isfinite(eps) or eps <= 0.0:
        raise ValidationError(
            f"{where}: epsilon must be finite and > 0, got {epsilon!r}; "
            "pass a positive privacy-loss parameter such as 0.5"
        )
    return eps


def check_delta(delta: float, where: str) -> float:
    if isinstance(delta, bool) or not isinstance(delta, int | float):
        raise ValidationError(f"{where}: delta must be a number, got {delta!r}")
    d = float(delta)
    if not math.isfinite(d) or d < 0.0 or d >= 1.0:
        raise ValidationError(f"{where}: delta must be in [0, 1), got {delta!r}")
    return d


def check_bounds(lower: float, upper: float, where: str) -> tuple[float, float]:
    try:
        lo, hi = float(lower), float(upper)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{where}: bounds must be numbers, got lower={lower!r}, upper={upper!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValidationError(f"{where}: bounds must be finite, got lower={lo}, upper={hi}")
    if lo > hi:
        raise ValidationError(
            f"{where}: lower bound {lo} is greater than upper bound {hi}; swap them"
        )
    if where.startswith("quantile") and lo == hi:
        raise ValidationError(f"{where}: lower and upper must differ, both are {lo}")
    return lo, hi


def floats(data: Iterable[Any], where: str) -> list[float]:
    try:
        import numpy as np

        return [float(x) for x in np.asarray(data, dtype=np.float64).ravel().tolist()]
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: data must be numbers ({exc})") from None


def fmt(x: float) -> str:
    return f"{x:.6g}"


def accuracy95(dp: Any, mech: str, scale: float) -> float:
    if mech == "gaussian":
        return float(dp.gaussian_scale_to_accuracy(scale, 0.05))
    return float(dp.laplacian_scale_to_accuracy(scale, 0.05))


def check_categories(
    categories: Sequence[str] | Sequence[int], data: Iterable[Any]
) -> tuple[list[str | int], type, list[Any]]:
    """Histogram arguments: unique categories all of one type (str or int), rows of that type."""
    cats: list[str | int] = list(categories)
    if not cats:
        raise ValidationError("histogram: categories must not be empty")
    if len(set(cats)) != len(cats):
        raise ValidationError("histogram: categories must be unique")
    if all(isinstance(c, str) for c in cats):
        kind: type = str
    elif all(isinstance(c, int) and not isinstance(c, bool) for c in cats):
        kind = int
    else:
        raise ValidationError(
            "histogram: categories must be all str or all int, got "
            f"{sorted({type(c).__name__ for c in cats})}"
        )
    rows: list[Any] = list(data)
    if not all(isinstance(r, kind) and not isinstance(r, bool) for r in rows):
        raise ValidationError(
            f"histogram: every row must be a {kind.__name__}, like the categories"
        )
    return cats, kind, rows
