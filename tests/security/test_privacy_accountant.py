"""PrivacyAccountant: exact budget accounting, refusal, validation, the off switch, audit."""

from __future__ import annotations

import math
import threading
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("opendp", reason="differential privacy needs the 'privacy' extra (opendp)")

from system0.errors import BudgetExhausted, Error, ValidationError
from system0.security.privacy import PrivacyAccountant
from system0.security.privacy_budgets import PrivacyBudgets


class ListSink:
    """A real in-memory sink: the Protocol is one method, and the ledger is wired later."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> int:
        self.records.append(record)
        return len(self.records) - 1


def test_ten_tenths_spend_exactly_one_then_refuse() -> None:
    acc = PrivacyAccountant("telemetry", epsilon=1.0)
    for _ in range(10):
        acc.count([1, 2, 3], epsilon=0.1)
    assert acc.spent.epsilon == 1.0
    assert acc.remaining.epsilon == 0.0
    with pytest.raises(BudgetExhausted) as info:
        acc.count([1, 2, 3], epsilon=0.1)
    err = info.value
    assert err.dataset == "telemetry"
    assert err.requested == (0.1, 0.0)
    assert err.remaining == (0.0, 0.0)
    assert "telemetry" in str(err) and "nothing was released" in str(err)
    assert acc.spent.epsilon == 1.0  # a refusal spends nothing


def test_decimal_amounts_add_up_without_float_drift() -> None:
    # 0.1 + 0.2 > 0.3 in binary floating point; the accountant must still admit both.
    acc = PrivacyAccountant("d", epsilon=0.3)
    acc.count([], epsilon=0.1)
    acc.count([], epsilon=0.2)
    assert acc.spent.epsilon == pytest.approx(0.3)
    assert not acc.can_spend(1e-9)


def test_release_reports_its_cost_and_running_total() -> None:
    acc = PrivacyAccountant("d", epsilon=2.0)
    r1 = acc.sum([1.0, 2.0], lower=0.0, upper=5.0, epsilon=0.5)
    r2 = acc.mean([1.0, 2.0], lower=0.0, upper=5.0, epsilon=0.75)
    assert (r1.epsilon, r1.delta, r1.mechanism) == (0.5, 0.0, "laplace")
    assert r1.spent.epsilon == 0.5 and r2.spent.epsilon == 1.25
    assert r2.epsilon == 0.75
    assert "clamped to [0, 5]" in r1.description and "epsilon=0.5" in r1.description
    assert not r1.exact and r1.scale is not None and r1.scale > 0


def test_gaussian_spends_delta_and_budget_delta_is_enforced() -> None:
    acc = PrivacyAccountant("d", epsilon=10.0, delta=1e-6, mechanism="gaussian")
    r = acc.count(range(50), epsilon=1.0, delta=6e-7)
    assert r.mechanism == "gaussian" and r.delta == 6e-7
    with pytest.raises(BudgetExhausted, match="delta"):
        acc.count(range(50), epsilon=1.0, delta=6e-7)  # epsilon left, delta not
    assert acc.remaining.epsilon == 9.0


def test_concurrent_releases_never_overspend() -> None:
    acc = PrivacyAccountant("d", epsilon=1.0)
    ok: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            try:
                acc.count([0] * 5, epsilon=0.02)
                with lock:
                    ok.append(1)
            except BudgetExhausted:
                with lock:
                    refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 50 and len(refused) == 50
    assert acc.spent.epsilon == 1.0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.decimals(min_value="0.01", max_value="0.5", places=2), max_size=12))
def test_accepts_exactly_while_the_exact_sum_fits(amounts: list[Any]) -> None:
    acc = PrivacyAccountant("d", epsilon=1.0)
    total = Fraction(0)
    for amount in amounts:
        eps = float(amount)
        if total + Fraction(str(amount)) <= 1:
            acc.count([], epsilon=eps)
            total += Fraction(str(amount))
        else:
            with pytest.raises(BudgetExhausted):
                acc.count([], epsilon=eps)
    assert acc.spent.epsilon == float(total)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, -math.inf, "1", True])
def test_bad_epsilon_is_a_typed_error_and_spends_nothing(bad: Any) -> None:
    acc = PrivacyAccountant("d", epsilon=1.0)
    with pytest.raises(ValidationError, match="epsilon"):
        acc.count([1], epsilon=bad)
    with pytest.raises(ValidationError, match="epsilon"):
        PrivacyAccountant("d", epsilon=bad)
    assert acc.spent.epsilon == 0.0


def test_bad_arguments_name_the_problem() -> None:
    acc = PrivacyAccountant("d", epsilon=5.0)
    with pytest.raises(ValidationError, match=r"lower bound 3\.0 is greater than upper bound 1\.0"):
        acc.sum([1.0], lower=3.0, upper=1.0, epsilon=1.0)
    with pytest.raises(ValidationError, match="finite"):
        acc.mean([1.0], lower=0.0, upper=math.inf, epsilon=1.0)
    with pytest.raises(ValidationError, match="q must be in"):
        acc.quantile([1.0], q=1.5, lower=0.0, upper=1.0, epsilon=1.0)
    with pytest.raises(ValidationError, match="Gaussian mechanism needs delta"):
        acc.count([1], epsilon=1.0, mechanism="gaussian")
    with pytest.raises(ValidationError, match="pure epsilon-DP"):
        acc.count([1], epsilon=1.0, delta=1e-6)
    with pytest.raises(ValidationError, match="delta must be in"):
        PrivacyAccountant("d", epsilon=1.0, delta=1.5)
    with pytest.raises(ValidationError, match="categories must be unique"):
        acc.histogram(["a"], categories=["a", "a"], epsilon=1.0)
    with pytest.raises(ValidationError, match="all str or all int"):
        acc.histogram(["a"], categories=["a", 1], epsilon=1.0)  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="data must be numbers"):
        acc.sum(["x"], lower=0.0, upper=1.0, epsilon=1.0)  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="max_contributions"):
        PrivacyAccountant("d", epsilon=1.0, max_contributions=0)
    assert acc.spent.epsilon == 0.0
    assert issubclass(BudgetExhausted, Error)


def test_disabled_results_are_exact_free_and_still_audited() -> None:
    sink = ListSink()
    acc = PrivacyAccountant("d", epsilon=0.1, enabled=False, audit=sink)
    data = [1.0, 2.0, 3.0, math.nan, 10.0]
    assert acc.count(data, epsilon=0.1).value == 5
    s = acc.sum(data, lower=0.0, upper=5.0, epsilon=0.1)
    assert s.value == 16.0 and s.exact and s.mechanism == "none" and s.epsilon == 0.0
    assert "exact" in s.description
    assert acc.mean(data, lower=0.0, upper=5.0, epsilon=0.1).value == 4.0
    h = acc.histogram(["a", "b", "a", "q"], categories=["a", "b"], epsilon=0.1)
    assert h.value == {"a": 2, "b": 1, None: 1}
    assert acc.quantile([1.0, 2.0, 3.0], q=0.5, lower=0.0, upper=5.0, epsilon=0.1).value == 2.0
    assert acc.spent.epsilon == 0.0
    assert [r["exact"] for r in sink.records] == [True] * 5


def test_every_release_and_refusal_is_recorded() -> None:
    sink = ListSink()
    acc = PrivacyAccountant("games", epsilon=1.0, audit=sink)
    r = acc.histogram(["win", "loss", "win"], categories=["win", "loss"], epsilon=1.0)
    with pytest.raises(BudgetExhausted):
        acc.count([1], epsilon=0.5)
    assert len(sink.records) == 2
    rel, refused = sink.records
    assert rel["kind"] == "dp_release" and rel["dataset"] == "games"
    assert rel["query"] == "histogram" and rel["epsilon"] == 1.0
    assert rel["value"] == [[k, v] for k, v in r.value.items()]
    assert refused["kind"] == "dp_refused" and refused["remaining_epsilon"] == 0.0


def test_a_failing_audit_sink_withholds_the_value() -> None:
    class Broken:
        def append(self, record: dict[str, Any]) -> None:
            raise OSError("ledger unavailable")

    acc = PrivacyAccountant("d", epsilon=1.0, audit=Broken())
    with pytest.raises(OSError, match="ledger unavailable"):
        acc.count([1, 2], epsilon=0.5)
    assert acc.spent.epsilon == 0.5  # spent: the noise was drawn even if never shown


def test_replaying_the_audit_records_restores_the_spent_budget() -> None:
    sink = ListSink()
    first = PrivacyAccountant("games", epsilon=1.0, audit=sink)
    first.count([1], epsilon=0.25)
    first.sum([1.0], lower=0.0, upper=1.0, epsilon=0.5)
    with pytest.raises(BudgetExhausted):
        first.count([1], epsilon=0.5)
    other = PrivacyAccountant("other", epsilon=1.0, audit=sink)
    other.count([1], epsilon=0.125)
    off = PrivacyAccountant("games", epsilon=1.0, enabled=False, audit=sink)
    off.count([1], epsilon=0.9)  # exact: recorded, spends nothing

    restarted = PrivacyAccountant("games", epsilon=1.0)
    assert restarted.replay(sink.records) == 2
    assert restarted.spent.epsilon == 0.75
    with pytest.raises(BudgetExhausted):
        restarted.count([1], epsilon=0.5)


def test_budgets_make_one_accountant_per_dataset() -> None:
    sink = ListSink()
    budgets = PrivacyBudgets(1.0, budgets={"training": (3.0, 0.0)}, audit=sink)
    assert budgets["telemetry"] is budgets["telemetry"]
    assert budgets["telemetry"].budget.epsilon == 1.0
    assert budgets["training"].budget.epsilon == 3.0
    budgets["telemetry"].count([1, 2], epsilon=1.0)
    with pytest.raises(BudgetExhausted):
        budgets["telemetry"].count([1, 2], epsilon=0.1)
    budgets["training"].count([1, 2], epsilon=2.0)  # its own budget, untouched by telemetry
    assert budgets.datasets() == ["telemetry", "training"]
    fresh = PrivacyBudgets(1.0, budgets={"training": (3.0, 0.0)})
    assert fresh.replay(sink.records) == 2
    assert fresh["telemetry"].remaining.epsilon == 0.0
    assert fresh["training"].remaining.epsilon == 1.0
    with pytest.raises(ValidationError, match="epsilon"):
        PrivacyBudgets(1.0, budgets={"bad": (-1.0, 0.0)})
