"""The gate passes on the shipped policy and fails, with a readable report, on broken variants
(issue 15, "done when"): a slow one, a fragile one, one that breaks the golden set, and one
whose suite crashes."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pytest

from system0.game.policy import load_policy
from system0.interfaces.model_interface import AIModelInterface, ModelInfo, NumpyModelInterface
from system0.testing import SUITES, AITestingSuite, GateReport
from system0.testing.report_html import render_html


@pytest.fixture(scope="module")
def shipped_report() -> GateReport:
    return AITestingSuite(load_policy(), source="shipped").run()


def test_the_shipped_policy_passes_every_suite(shipped_report: GateReport) -> None:
    assert [s.name for s in shipped_report.suites] == list(SUITES)
    assert shipped_report.passed, [s.summary() for s in shipped_report.suites]
    assert shipped_report.verdict == "pass" and shipped_report.failed == []
    assert shipped_report.model_hash == load_policy().introspect().content_hash
    for suite in shipped_report.suites:
        assert suite.checks and suite.error is None


def test_a_slow_model_fails_perf_with_the_figures_side_by_side(slow_model: Any) -> None:
    report = AITestingSuite(slow_model, suites=("golden", "perf")).run()
    assert report.failed == ["perf"]
    perf = report.suite("perf")
    failed = {c.name: c.detail for c in perf.failed_checks}
    assert "latency_p50_us" in failed
    detail = failed["latency_p50_us"]
    # the candidate's figure, its baseline and the change, in one line a person reads
    assert "baseline" in detail and "change" in detail and "worse by more than" in detail
    assert perf.data["candidate"]["latency_p50_us"] > 2000  # it sleeps 2 ms a call
    assert perf.data["has_baseline"]
    assert perf.data["attempts"] == 2  # measured twice before a failure is reported


def test_a_fragile_model_fails_the_adversarial_suite(fragile_model: NumpyModelInterface) -> None:
    report = AITestingSuite(fragile_model, suites=("adversarial", "red_team")).run()
    assert "adversarial" in report.failed
    adv = report.suite("adversarial")
    flips = [c for c in adv.failed_checks if c.name.startswith("flip rate")]
    assert flips, adv.summary()
    assert "change action; limit" in flips[0].detail
    # the shipped policy measured the same way stays inside every limit
    shipped = AITestingSuite(load_policy(), suites=("adversarial",)).run()
    assert shipped.passed
    assert (
        adv.data["pgd"][2]["flip_rate"] > shipped.suite("adversarial").data["pgd"][2]["flip_rate"]
    )


def test_a_model_that_drifts_from_the_golden_set_fails_it(
    golden_broken_model: NumpyModelInterface,
) -> None:
    report = AITestingSuite(golden_broken_model).run()
    assert report.failed == ["golden"], [s.summary() for s in report.suites]
    check = report.suite("golden").failed_checks[0]
    assert check.name == "outputs within tolerance"
    assert "rows off tolerance" in check.detail and "atol 0.0001" in check.detail
    html = render_html(report)
    assert "FAIL" in html and "rows off tolerance" in html


class NoGradient(AIModelInterface):
    """A model the adversarial suite cannot differentiate (no ``mlp``): its suite crashes."""

    backend = "opaque"

    def __init__(self, inner: NumpyModelInterface) -> None:
        super().__init__(name="opaque")
        self.inner = inner

    def load(self, source: Any) -> Self:
        return self

    def introspect(self) -> ModelInfo:
        return dataclasses.replace(self.inner.introspect(), name="opaque")

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        return np.asarray(self.inner.infer(x))


def test_a_suite_that_crashes_fails_the_gate_and_the_others_still_run() -> None:
    inner = load_policy()
    assert isinstance(inner, NumpyModelInterface)
    report = AITestingSuite(NoGradient(inner), suites=("adversarial", "red_team")).run()
    adv = report.suite("adversarial")
    assert not adv.passed and adv.error is not None
    assert "MLPWeights" in adv.error and "crashed" in adv.summary()
    assert report.suite("red_team").passed  # the crash did not stop the gate
    assert report.failed == ["adversarial"]


def test_a_missing_golden_file_fails_its_suite(tmp_path: Any) -> None:
    report = AITestingSuite(load_policy(), golden=tmp_path / "none.json", suites=("golden",)).run()
    assert report.failed == ["golden"]
    assert "cannot read golden set" in (report.suite("golden").error or "")
