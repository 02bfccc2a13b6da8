"""MetricThreshold-style judgement (absolute limit, absolute and relative change, direction)
and the per-machine-class baseline file."""

from __future__ import annotations

from pathlib import Path

import pytest

from system0.errors import ValidationError
from system0.testing.perf_suite import PerfBaseline, machine_class, shipped_baseline_path
from system0.testing.thresholds import MetricThreshold, compare


def test_lower_is_better_fails_past_the_relative_change() -> None:
    limits = MetricThreshold(False, threshold=1000.0, max_relative_change=1.0)
    assert compare("p50", 190.0, limits, 100.0).passed  # +90 %
    check = compare("p50", 250.0, limits, 100.0, " us")
    assert not check.passed
    assert check.detail == (
        "p50 250.0 us (lower is better); limit <= 1,000.0 us; baseline 100.0 us, "
        "change +150.0 us (+150%) -> worse by more than 100%"
    )
    assert compare("p50", 10.0, limits, 100.0).passed  # faster is never a failure


def test_higher_is_better_and_the_absolute_criteria() -> None:
    limits = MetricThreshold(True, threshold=50.0, max_absolute_change=20.0)
    assert compare("rps", 85.0, limits, 100.0).passed
    assert "worse by more than 20.0" in compare("rps", 79.0, limits, 100.0).detail
    assert "beyond the limit" in compare("rps", 40.0, limits, None).detail
    assert compare("rps", 60.0, limits, None).passed  # no baseline: the limit alone
    assert not compare("rps", float("nan"), limits, None).passed


def test_thresholds_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="allowed regression"):
        MetricThreshold(False, max_relative_change=-0.1)
    with pytest.raises(ValueError, match="finite"):
        MetricThreshold(False, threshold=float("inf"))


def test_the_shipped_baseline_covers_this_machine_class() -> None:
    base = PerfBaseline.load(shipped_baseline_path())
    cls = machine_class()
    assert cls.count("-") >= 3 and " " not in cls
    assert base.machines, "the shipped baseline file names no machine class"
    if base.metrics(cls) is None:  # the perf suite then judges by the absolute limits alone
        pytest.skip(f"no shipped baseline for {cls}; system0 gate --record-baseline FILE")
    assert set(base.metrics(cls) or {}) >= {"latency_p50_us", "throughput_rps"}


def test_bad_baseline_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text('{"format": "system0-perf-baseline", "version": 1, "machines": {"x": 1}}')
    with pytest.raises(ValidationError, match="'machines' must map"):
        PerfBaseline.load(bad)
    with pytest.raises(ValidationError, match="cannot read"):
        PerfBaseline.load(tmp_path / "none.json")
