"""No deploy without a pass: the check the deploy path runs before a version goes live.

:func:`require_passing_report` refuses, with :class:`~system0.errors.GateRefused` naming the
check that failed, in this order (a field of a report is trusted only once its signature is):

1. ``no report``: no path, no file, or not a gate report;
2. ``signature invalid``: unsigned, signed by another key, or changed after signing;
3. ``report for another model <hash>``: the report is for other weights;
4. ``report for another config <hash>``: it is for another configuration;
5. ``failed: <suite>, ...``: the gate ran and said no.

:func:`version_gate_check` is that check as a deployment's ``gate_check``: a registry version's
report lives in its own folder (``ROOT/NAME/VERSION/gate/gate-report.json``, where
``system0 gate ROOT/NAME/VERSION --out ROOT/NAME/VERSION/gate`` writes it), so the report
travels with the weights it judged and a deploy finds it without being told where.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from system0.errors import Error, GateRefused, IntegrityError, ValidationError
from system0.testing.report import GateReport, VerifyKey

__all__ = ["GATE_REPORT", "GatedVersion", "require_passing_report", "version_gate_check"]

GATE_REPORT = Path("gate") / "gate-report.json"  # inside a registry version's folder


class GatedVersion(Protocol):
    """What the check reads of a registry version (``system0.serving.registry.ModelVersion``)."""

    @property
    def path(self) -> Path: ...

    @property
    def content_hash(self) -> str: ...

    @property
    def config_hash(self) -> str | None: ...


def require_passing_report(
    report_path: str | os.PathLike[str] | None,
    content_hash: str,
    config_hash: str | None,
    verify_key: VerifyKey,
) -> GateReport:
    """The report at ``report_path`` when it is a passing, correctly signed gate report for the
    model ``content_hash`` under the config ``config_hash`` (None: a deploy with no config, the
    report must then name none either); raises :class:`GateRefused` otherwise."""
    if report_path is None:
        raise GateRefused(
            f"no report: no gate report was given for model {content_hash}; run "
            "`system0 gate MODEL --signing-key KEY` and deploy with its gate-report.json",
            "no report",
        )
    path = Path(report_path)
    if not path.is_file():
        raise GateRefused(
            f"no report: {os.fspath(path)} does not exist; run `system0 gate` on this model first",
            "no report",
        )
    try:
        report = GateReport.read(path)
    except ValidationError as exc:
        raise GateRefused(f"no report: {exc}", "no report") from None
    try:
        report.verify(verify_key)
    except (IntegrityError, ValidationError) as exc:
        raise GateRefused(
            f"signature invalid: {os.fspath(path)}: {exc}", "signature invalid"
        ) from None
    except Error as exc:  # the trusted key itself could not be read
        raise GateRefused(
            f"signature invalid: the verify key: {exc}", "signature invalid"
        ) from None
    if report.model_hash != content_hash:
        raise GateRefused(
            f"report for another model {report.model_hash}: this deploy is model {content_hash}; "
            "gate this exact version",
            "another model",
        )
    if report.config_hash != config_hash:
        raise GateRefused(
            f"report for another config {report.config_hash}: this deploy runs config "
            f"{config_hash}; gate the model with --config of this deployment",
            "another config",
        )
    if not report.passed:
        details = "; ".join(s.summary() for s in report.suites if not s.passed)
        raise GateRefused(f"failed: {', '.join(report.failed)} ({details})", "failed")
    return report


def version_gate_check(verify_key: VerifyKey) -> Callable[[GatedVersion], None]:
    """A deployment's ``gate_check``: the version deploys only with a passing report, signed by
    the holder of ``verify_key``'s private half, for its exact content and config hashes, found
    at ``<version folder>/gate/gate-report.json``."""

    def check(version: GatedVersion) -> None:
        require_passing_report(
            version.path / GATE_REPORT, version.content_hash, version.config_hash, verify_key
        )

    return check
