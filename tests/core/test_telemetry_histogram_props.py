"""Property tests of the log-linear histogram: quantile error, merge algebra, deltas."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from system0.core.telemetry import (
    HISTOGRAM_MAX_VALUE,
    HISTOGRAM_RELATIVE_ERROR,
    HistogramSnapshot,
    Registry,
    prometheus_le_bounds,
)

QUANTILES = (0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0)

# Any distribution: uniform over the whole range, clustered around a random scale
# (the shape of real latencies), and tiny values where buckets are exact.
values = st.one_of(
    st.integers(0, HISTOGRAM_MAX_VALUE),
    st.integers(0, 40).flatmap(lambda k: st.integers(2**k, min(2 ** (k + 2), HISTOGRAM_MAX_VALUE))),
    st.integers(0, 3000),
)
samples = st.lists(values, min_size=1, max_size=400)


def snap_of(xs: list[int]) -> HistogramSnapshot:
    h = Registry().histogram("h")
    for x in xs:
        h.record(x)
    return h.snapshot()


def exact_quantile(sorted_xs: list[int], q: float) -> int:
    n = len(sorted_xs)
    rank = min(n, max(1, math.ceil(q * n)))
    return sorted_xs[rank - 1]


@settings(max_examples=300, deadline=None)
@given(samples)
def test_quantiles_within_documented_relative_error(xs: list[int]) -> None:
    s = snap_of(xs)
    ordered = sorted(xs)
    for q in QUANTILES:
        got = s.quantile(q)
        want = exact_quantile(ordered, q)
        assert got is not None
        assert abs(got - want) <= want * HISTOGRAM_RELATIVE_ERROR, (q, got, want)
        if want < 2048:
            assert got == want  # single-value buckets are exact
    assert (s.count, s.sum, s.min, s.max) == (len(xs), sum(xs), min(xs), max(xs))
    assert (s.p50, s.p90, s.p99, s.p999) == tuple(s.quantile(q) for q in (0.5, 0.9, 0.99, 0.999))
    assert s.quantile(1.0) == max(xs)


def test_documented_error_is_three_significant_digits() -> None:
    assert HISTOGRAM_RELATIVE_ERROR == 2**-11
    assert HISTOGRAM_RELATIVE_ERROR < 1e-3


@settings(max_examples=150, deadline=None)
@given(samples, samples, samples)
def test_merge_is_associative_commutative_and_equals_recording_both(
    a: list[int], b: list[int], c: list[int]
) -> None:
    sa, sb, sc = snap_of(a), snap_of(b), snap_of(c)
    assert sa.merge(sb).merge(sc) == sa.merge(sb.merge(sc))
    assert sa.merge(sb) == sb.merge(sa)
    assert sa.merge(sb) == snap_of(a + b)
    assert sa.merge(HistogramSnapshot()) == sa


@settings(max_examples=150, deadline=None)
@given(samples, st.lists(values, max_size=200))
def test_delta_is_what_was_recorded_in_between(before: list[int], after: list[int]) -> None:
    h = Registry().histogram("h")
    for x in before:
        h.record(x)
    early = h.snapshot()
    for x in after:
        h.record(x)
    late = h.snapshot()
    d = late.delta(early)
    assert d.count == len(after)
    assert d.sum == sum(after)
    assert d.buckets() == snap_of(after).buckets() if after else d.buckets() == []
    back = early.merge(d)
    assert (back.count, back.sum, back.buckets()) == (late.count, late.sum, late.buckets())
    if after:
        lo, hi = min(after), max(after)
        assert d.min is not None and d.max is not None
        assert abs(d.min - lo) <= lo * HISTOGRAM_RELATIVE_ERROR
        assert abs(d.max - hi) <= hi * HISTOGRAM_RELATIVE_ERROR
    else:
        assert d.min is None and d.max is None and d.p50 is None


@settings(max_examples=50, deadline=None)
@given(samples)
def test_snapshot_is_immutable_view(xs: list[int]) -> None:
    h = Registry().histogram("h")
    for x in xs:
        h.record(x)
    s = h.snapshot()
    frozen = (s.count, s.sum, s.buckets())
    for x in xs:
        h.record(x)
    assert (s.count, s.sum, s.buckets()) == frozen
    assert h.snapshot().count == 2 * len(xs)


@settings(max_examples=150, deadline=None)
@given(samples)
def test_prometheus_le_counts_every_value_at_or_below_le(xs: list[int]) -> None:
    s = snap_of(xs)
    for le in prometheus_le_bounds():
        got = s.count_le(le)
        at_or_below = sum(1 for x in xs if x <= le)
        within_bucket = sum(1 for x in xs if x <= le * (1 + 2**-10))
        assert at_or_below <= got <= within_bucket, le
        if le < 2048:
            assert got == at_or_below
