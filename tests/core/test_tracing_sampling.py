"""Whole-trace sampling: every span of a trace shares the decision, which depends only on the
trace id (ratio) or on the parent's sampled flag (parent-based)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from system0.core import tracing
from system0.core.tracing import span

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    tracing.drain_spans()
    yield
    tracing.set_sampling(1.0)
    tracing.drain_spans()


def make_traces(n: int) -> dict[int, bool]:
    """n traces of three spans each; returns {trace_id: root sampled}."""
    decided = {}
    for _ in range(n):
        with span("root") as r, span("mid") as m, span("leaf") as leaf:
            assert r.sampled == m.sampled == leaf.sampled
        decided[r.trace_id] = r.sampled
    return decided


def test_a_trace_is_kept_or_dropped_whole() -> None:
    tracing.set_sampling(0.5)
    assert tracing.sampling() == (0.5, True)
    decided = make_traces(2000)
    recorded = Counter(s.trace_id for s in tracing.drain_spans())
    assert set(recorded.values()) == {3}  # never a partial trace
    assert set(recorded) == {t for t, kept in decided.items() if kept}
    assert all(tracing.sample_trace(t) == kept for t, kept in decided.items())
    assert 800 < len(recorded) < 1200  # about half (binomial sd ~ 22)


def test_lower_ratios_keep_a_subset_of_the_traces() -> None:
    tracing.set_sampling(1.0)
    ids = list(make_traces(500))
    tracing.drain_spans()
    kept = {}
    for ratio in (0.6, 0.3, 0.1, 0.0):
        tracing.set_sampling(ratio)
        kept[ratio] = {t for t in ids if tracing.sample_trace(t)}
    assert kept[0.6] >= kept[0.3] >= kept[0.1] >= kept[0.0] == set()


def test_ratio_zero_records_nothing_but_still_propagates() -> None:
    tracing.set_sampling(0.0)
    with span("root") as r, span("child") as c:
        assert c.parent_id == r.span_id
        assert tracing.inject() == f"00-{r.trace_id_hex}-{c.span_id_hex}-00"
        c.set_attribute("ignored", 1)
    assert tracing.drain_spans() == []


def test_parent_based_sampling_follows_the_remote_flag() -> None:
    tracing.set_sampling(0.0)
    with span("server", parent=GOOD) as s:
        assert s.sampled
    tracing.set_sampling(1.0)
    with span("server", parent=GOOD[:-2] + "00") as u:
        assert not u.sampled
    assert [x.name for x in tracing.drain_spans()] == ["server"]


def test_without_parent_based_every_span_decides_from_its_trace_id() -> None:
    trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736
    tracing.set_sampling(0.5, parent_based=False)
    assert tracing.sampling() == (0.5, False)
    with span("server", parent=GOOD) as s:
        assert s.sampled == tracing.sample_trace(trace_id)


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_a_ratio_outside_zero_to_one_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        tracing.set_sampling(ratio)
