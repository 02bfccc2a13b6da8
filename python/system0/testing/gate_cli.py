"""``system0 gate MODEL``: run the release gate, write the signed report, exit 0 on a pass.

Exit codes: 0 the gate passed, 1 it failed (the report says why), 2 bad usage or input (a
model, config, key or baseline that could not be read). The report goes to ``--out``
(``gate-report.json`` and ``gate-report.html``); the progress bar is drawn on a terminal only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from system0.errors import Error

__all__ = ["add_gate_commands"]


class _Bar:
    """A one-line bar on a terminal's stderr; nothing at all when stderr is not a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()

    def __call__(self, suite: str, index: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        done = width * index // max(total, 1)
        end = "\n" if index == total else ""
        self.stream.write(
            f"\r[{'#' * done}{'.' * (width - done)}] {index}/{total} {suite:<12}{end}"
        )
        self.stream.flush()


def _run(args: argparse.Namespace) -> int:
    from system0.core.config import AIConfig
    from system0.testing.perf_suite import record_baseline
    from system0.testing.report import load_signing_key
    from system0.testing.report_html import render_html
    from system0.testing.suite import AITestingSuite

    try:
        from system0.testing.model_source import resolve_model

        target = resolve_model(args.model)
        config = AIConfig.load_from_yaml(args.config) if args.config else None
        key = load_signing_key(args.signing_key) if args.signing_key else None
        if args.record_baseline:
            figures = record_baseline(target.model, args.record_baseline, config=config)
            print(f"baseline recorded in {args.record_baseline}: {figures}")
            return 0
        suite = AITestingSuite(
            target.model,
            config=config,
            config_hash=target.config_hash,
            golden=args.golden,
            baseline=args.baseline,
            red_team=args.red_team,
            source=target.source,
            seed=args.seed,
        )
    except (Error, OSError) as exc:
        print(f"system0 gate: {exc}", file=sys.stderr)
        return 2
    report = suite.run(progress=_Bar(sys.stderr, not args.no_progress))
    if key is not None:
        report = report.signed(key)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = report.write(out / "gate-report.json")
    html_path = out / "gate-report.html"
    html_path.write_text(render_html(report))
    for s in report.suites:
        print(s.summary())
        for c in s.failed_checks:
            print(f"    {c.name}: {c.detail}")
    print(
        f"gate {report.verdict.upper()} for {report.model_hash} in {report.seconds:.1f} s: "
        f"{json_path} {html_path}" + ("" if key is not None else " (unsigned: no --signing-key)")
    )
    return 0 if report.passed else 1


def add_gate_commands(sub: Any) -> None:
    p = sub.add_parser(
        "gate",
        help="run the release gate on a model version and write its signed report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        nargs="?",
        default=None,
        help="a .safetensors weights file or a registry version folder "
        "(default: the shipped policy)",
    )
    p.add_argument(
        "--config", help="the AIConfig YAML the model is deployed with (its hash is bound)"
    )
    p.add_argument("--out", default="gate-report", help="report folder (default: gate-report)")
    p.add_argument("--baseline", help="perf baseline file (default: the shipped one)")
    p.add_argument(
        "--record-baseline",
        metavar="FILE",
        help="measure and store this machine's baseline, then exit",
    )
    p.add_argument("--golden", help="golden set file (default: the shipped policy's)")
    p.add_argument(
        "--signing-key", help="Ed25519 private key PEM (system0 config keygen) to sign the verdict"
    )
    p.add_argument(
        "--red-team", help="folder of red-team scenario YAML files (default: the shipped ones)"
    )
    p.add_argument(
        "--seed", type=int, default=15, help="seed of the generated states (default: 15)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run)
