"""The watch after a switch, on a fake clock: thresholds, the minimum count, the window."""

from __future__ import annotations

import pytest

from system0.errors import ValidationError
from system0.serving.watch import RollbackPolicy, SwitchWatch

MS = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.t = 5_000_000_000

    def __call__(self) -> int:
        return self.t


def test_error_rate_breach_fires_once_after_the_minimum_count() -> None:
    clock = FakeClock()
    w = SwitchWatch(RollbackPolicy(window_s=10, min_requests=20, max_error_rate=0.1), "v2", clock)
    assert w.observe([1 * MS] * 9, errors=3) is None  # 25 % but only 12 answers
    breach = w.observe([1 * MS] * 8, errors=0)  # 3 of 20 = 15 %
    assert breach is not None and "error rate 15.0% over 20 answers" in breach and "v2" in breach
    assert w.observe([1 * MS] * 100, errors=100) is None  # fired once; the rollback is running
    assert w.breach == breach


def test_healthy_traffic_never_breaches() -> None:
    w = SwitchWatch(
        RollbackPolicy(window_s=10, min_requests=10, max_error_rate=0.05, max_p99_ms=5),
        "v2",
        FakeClock(),
    )
    for _ in range(100):
        assert w.observe([2 * MS] * 10, errors=0) is None
    assert w.counts() == (1000, 0)


def test_p99_breach_is_judged_every_check_every_answers() -> None:
    policy = RollbackPolicy(window_s=10, min_requests=10, max_p99_ms=5, check_every=50)
    w = SwitchWatch(policy, "v3", FakeClock())
    assert w.observe([1 * MS] * 10, errors=0) is None
    assert w.observe([9 * MS] * 30, errors=0) is None  # 40 answers since the last check
    breach = w.observe([9 * MS] * 10, errors=0)
    assert breach is not None and "p99 latency 9.00 ms over 50 answers exceeds 5 ms" in breach


def test_the_window_closes_on_the_clock() -> None:
    clock = FakeClock()
    w = SwitchWatch(RollbackPolicy(window_s=30, min_requests=1, max_error_rate=0.0), "v2", clock)
    clock.t += 29 * 1_000_000_000
    assert w.active()
    clock.t += 1_000_000_000
    assert not w.active()
    assert w.observe([], errors=50) is None  # trusted now: errors are the alerts' business


def test_a_zero_window_never_watches() -> None:
    w = SwitchWatch(RollbackPolicy(window_s=0), "v2", FakeClock())
    assert not w.active() and w.observe([], errors=10) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_s": -1},
        {"window_s": float("inf")},
        {"min_requests": 0},
        {"max_error_rate": 1.5},
        {"max_p99_ms": 0},
        {"max_p99_ms": float("nan")},
        {"check_every": 0},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        RollbackPolicy(**kwargs)  # type: ignore[arg-type]
