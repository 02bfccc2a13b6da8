"""``AITestingSuite``: every suite of the release gate over one model, as one report.

The suites run in a fixed order (:data:`SUITES`): golden, contract, engine, perf, adversarial,
red_team. Each runs through :func:`~system0.testing.results.run_suite`, so a suite that crashes
is a failed suite in the report, with its error, and the gate goes on to run the others: the
report says everything that is wrong at once. Inputs that are missing (the shipped golden set,
baseline or scenarios) are loaded inside their suite, so a missing file fails that suite too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from system0 import __version__
from system0.core.config import AIConfig
from system0.interfaces.model_interface import AIModelInterface
from system0.testing.adversarial import AttackLimits, adversarial_suite
from system0.testing.contract_suite import contract_suite
from system0.testing.engine_suite import engine_suite
from system0.testing.golden import GoldenSet, golden_suite, shipped_golden_path
from system0.testing.perf_suite import (
    PerfBaseline,
    machine_class,
    perf_suite,
    shipped_baseline_path,
)
from system0.testing.red_team import red_team_suite, shipped_scenarios_dir
from system0.testing.report import GateReport
from system0.testing.results import SuiteResult, run_suite
from system0.testing.thresholds import MetricThreshold

__all__ = ["SUITES", "AITestingSuite", "Progress"]

SUITES = ("golden", "contract", "engine", "perf", "adversarial", "red_team")
Progress = Callable[[str, int, int], None]
"""``progress(suite, index, total)``: called as each suite starts, and with ``index == total``
at the end."""


class AITestingSuite:
    """The release gate over ``model``. ``golden`` / ``baseline`` / ``red_team``: a file or
    folder (default: the ones shipped for the shipped policy); ``config``: the configuration
    the model is deployed with (engine settings; its hash is bound into the report, or
    ``config_hash`` when the config itself is not at hand)."""

    def __init__(
        self,
        model: AIModelInterface,
        *,
        config: AIConfig | None = None,
        config_hash: str | None = None,
        golden: GoldenSet | str | os.PathLike[str] | None = None,
        baseline: PerfBaseline | str | os.PathLike[str] | None = None,
        red_team: str | os.PathLike[str] | None = None,
        perf_limits: dict[str, MetricThreshold] | None = None,
        attack_limits: AttackLimits | None = None,
        source: str = "",
        seed: int = 15,
        suites: tuple[str, ...] = SUITES,
    ) -> None:
        unknown = sorted(set(suites) - set(SUITES))
        if unknown:
            raise ValueError(f"unknown suites {unknown}; the gate has {list(SUITES)}")
        self.model = model
        self.config = config
        self.config_hash = config.content_hash if config is not None else config_hash
        self.golden = golden
        self.baseline = baseline
        self.red_team = red_team
        self.perf_limits = perf_limits
        self.attack_limits = attack_limits
        self.source = source
        self.seed = seed
        self.suites = suites

    def _golden(self) -> SuiteResult:
        g = self.golden
        gs = g if isinstance(g, GoldenSet) else GoldenSet.load(g or shipped_golden_path())
        return golden_suite(self.model, gs)

    def _perf(self) -> SuiteResult:
        b = self.baseline
        base = b if isinstance(b, PerfBaseline) else PerfBaseline.load(b or shipped_baseline_path())
        return perf_suite(
            self.model, base, config=self.config, limits=self.perf_limits, seed=self.seed
        )

    def _runners(self) -> dict[str, Callable[[], SuiteResult]]:
        m, seed = self.model, self.seed
        return {
            "golden": self._golden,
            "contract": lambda: contract_suite(m, seed),
            "engine": lambda: engine_suite(m, seed),
            "perf": self._perf,
            "adversarial": lambda: adversarial_suite(m, self.attack_limits, seed=seed),
            "red_team": lambda: red_team_suite(m, Path(self.red_team or shipped_scenarios_dir())),
        }

    def run(self, progress: Progress | None = None) -> GateReport:
        """Run the suites; the report is unsigned (sign it with :meth:`GateReport.signed`)."""
        start = time.perf_counter()
        runners = self._runners()
        results: list[SuiteResult] = []
        for i, name in enumerate(self.suites):
            if progress is not None:
                progress(name, i, len(self.suites))
            results.append(run_suite(name, runners[name]))
        if progress is not None:
            progress("done", len(self.suites), len(self.suites))
        info = self.model.introspect()
        return GateReport(
            model_hash=info.content_hash,
            config_hash=self.config_hash,
            suites=results,
            model_name=info.name,
            source=self.source,
            machine_class=machine_class(),
            seconds=time.perf_counter() - start,
            system0_version=__version__,
        )
