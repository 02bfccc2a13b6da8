"""Two-sample statistics for drift checks, in numpy (scipy is not a runtime dependency).

Each function follows the definition scipy uses, so that tests can hold them to
``scipy.stats`` on the same samples: ``ks_2samp`` (statistic exactly; the p-value is the
asymptotic Kolmogorov one, ``scipy.stats.kstwobign.sf``), ``wasserstein_distance``,
``chisquare`` (p-value from the regularized upper incomplete gamma function) and
``jensenshannon`` (``scipy.spatial.distance.jensenshannon`` with ``base=2``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def ks_2samp(a: Array, b: Array) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov statistic D and its asymptotic p-value."""
    a, b = np.sort(a), np.sort(b)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return float("nan"), float("nan")
    both = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, both, side="right") / n
    cdf_b = np.searchsorted(b, both, side="right") / m
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    return d, kolmogorov_sf(math.sqrt(n * m / (n + m)) * d)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (limit of sqrt(n) * D_n)."""
    if x <= 0.0:
        return 1.0
    if x < 1.18:
        # small x: the theta-function form converges where the alternating series does not
        y = math.exp(-(math.pi**2) / (8.0 * x * x))
        s = sum(y ** ((2 * k - 1) ** 2) for k in range(1, 20))
        return max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / x * s)
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1.0) ** (k - 1) * math.exp(-2.0 * k * k * x * x)
        total += term
        if abs(term) < 1e-17:
            break
    return min(1.0, max(0.0, total))


def wasserstein_distance(u: Array, v: Array) -> float:
    """First Wasserstein (earth mover's) distance between two 1-D empirical distributions."""
    u, v = np.sort(u), np.sort(v)
    if len(u) == 0 or len(v) == 0:
        return float("nan")
    values = np.sort(np.concatenate([u, v]))
    deltas = np.diff(values)
    u_cdf = np.searchsorted(u, values[:-1], side="right") / len(u)
    v_cdf = np.searchsorted(v, values[:-1], side="right") / len(v)
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def psi(expected_counts: Array, actual_counts: Array, eps: float = 1e-4) -> float:
    """Population stability index over shared bins; empty bins are floored at ``eps``."""
    e = np.maximum(expected_counts / max(expected_counts.sum(), 1.0), eps)
    a = np.maximum(actual_counts / max(actual_counts.sum(), 1.0), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def jensenshannon(p: Array, q: Array) -> float:
    """Jensen-Shannon distance (square root of the divergence), base 2: in [0, 1]."""
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (left.sum() + right.sum()) / math.log(2.0)
    return float(math.sqrt(max(js, 0.0) / 2.0))


def chisquare(observed: Array, expected: Array) -> tuple[float, float]:
    """Pearson's chi-square goodness of fit: statistic and p-value with k - 1 dof."""
    stat = float(np.sum((observed - expected) ** 2 / expected))
    dof = len(observed) - 1
    if dof < 1:
        return stat, float("nan")
    return stat, gammaincc(dof / 2.0, stat / 2.0)


def gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) (series below a + 1, Lentz above)."""
    if x <= 0.0:
        return 1.0
    lg = math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - lg))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(-x + a * math.log(x) - lg) * h)


__all__ = [
    "chisquare",
    "gammaincc",
    "jensenshannon",
    "kolmogorov_sf",
    "ks_2samp",
    "psi",
    "wasserstein_distance",
]
