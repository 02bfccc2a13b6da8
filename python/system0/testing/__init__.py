"""system0.testing: the release gate. ``AITestingSuite(model).run()`` runs the golden,
contract, engine, perf, adversarial and red-team suites into one signed-able
:class:`~system0.testing.report.GateReport`; ``system0 gate MODEL`` does it from the command
line, and :func:`~system0.testing.deploy_check.require_passing_report` is what a deploy asks
before a version goes live."""

from system0.testing.deploy_check import require_passing_report, version_gate_check
from system0.testing.golden import GoldenSet, golden_check
from system0.testing.report import GateReport
from system0.testing.results import Check, SuiteResult
from system0.testing.suite import SUITES, AITestingSuite

__all__ = [
    "SUITES",
    "AITestingSuite",
    "Check",
    "GateReport",
    "GoldenSet",
    "SuiteResult",
    "golden_check",
    "require_passing_report",
    "version_gate_check",
]
