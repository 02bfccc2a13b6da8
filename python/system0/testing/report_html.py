"""The gate report as one self-contained HTML page: the verdict, each suite's checks, and
inline SVG plots of the figures (perf against its baseline, attack success by budget, golden
errors, refusals by reason code). No script: it renders the same in any browser or viewer."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from system0.testing.report import GateReport
from system0.testing.results import SuiteResult
from system0.testing.svg import bar_chart, line_chart

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
h1{margin-bottom:.2em} .pass{color:#1d7a1d} .fail{color:#b02020}
table{border-collapse:collapse;width:100%;margin:.5em 0 1em} td,th{border-bottom:1px solid #ddd;
padding:4px 8px;text-align:left;vertical-align:top;font-size:14px} code{font-size:13px}
.chart{width:100%;max-width:640px;display:block;margin:.5em 0} pre{background:#f6f6f6;padding:8px;
overflow-x:auto} .verdict{font-size:28px;font-weight:bold}
"""


def _plots(suite: SuiteResult) -> list[str]:
    d: dict[str, Any] = suite.data
    if suite.name == "perf" and "candidate" in d:
        cand, base = d["candidate"], d.get("baseline") or {}
        keys = ["latency_p50_us", "latency_p90_us", "latency_p99_us"]
        series: dict[str, Sequence[float | None]] = {"candidate": [cand.get(k) for k in keys]}
        if base:
            series["baseline"] = [base.get(k) for k in keys]
        out = [bar_chart("latency in the engine (µs)", ["p50", "p90", "p99"], series, "")]
        thr: dict[str, Sequence[float | None]] = {"candidate": [cand.get("throughput_rps")]}
        if base:
            thr["baseline"] = [base.get("throughput_rps")]
        out.append(bar_chart("throughput (answers / s)", ["throughput"], thr))
        return out
    if suite.name == "adversarial" and d.get("fgsm"):
        eps = [r["eps"] for r in d["fgsm"]]
        lim = d.get("limits", {})
        flips = {
            "FGSM": [r["flip_rate"] for r in d["fgsm"]],
            "PGD": [r["flip_rate"] for r in d["pgd"]],
            "limit": lim.get("max_flip_rate", []),
        }
        drops = {
            "FGSM": [max(0.0, r["confidence_drop"]) for r in d["fgsm"]],
            "PGD": [max(0.0, r["confidence_drop"]) for r in d["pgd"]],
            "limit": lim.get("max_confidence_drop", []),
        }
        return [
            line_chart("action-flip rate by budget eps (normalized units)", eps, flips),
            line_chart("confidence drop of the clean action by eps", eps, drops),
        ]
    if suite.name == "golden" and d.get("row_errors"):
        errs = sorted(d["row_errors"], reverse=True)[:20]
        return [
            bar_chart(
                f"largest output errors vs the golden set (atol {d.get('atol', 0):g})",
                [str(i + 1) for i in range(len(errs))],
                {"|output - golden|": errs, "atol": [d.get("atol")] * len(errs)},
            )
        ]
    if suite.name == "contract" and d.get("reason_codes"):
        codes = d["reason_codes"]
        return [
            bar_chart("refusals by reason code", list(codes), {"refusals": list(codes.values())})
        ]
    return []


def _suite(suite: SuiteResult) -> str:
    cls = "pass" if suite.passed else "fail"
    rows = "".join(
        f'<tr><td class="{"pass" if c.passed else "fail"}">{"pass" if c.passed else "FAIL"}</td>'
        f"<td>{escape(c.name)}</td><td>{escape(c.detail)}</td></tr>"
        for c in suite.checks
    )
    parts = [
        f'<h2 id="{escape(suite.name)}" class="{cls}">{escape(suite.name)}: '
        f"{'passed' if suite.passed else 'FAILED'} <small>({suite.seconds:.2f} s)</small></h2>"
    ]
    if suite.error is not None:
        parts.append(
            "<p class=fail>The suite crashed; a crash fails the gate.</p>"
            f"<pre>{escape(suite.error)}</pre>"
        )
    if not suite.checks and suite.error is None:
        parts.append("<p class=fail>The suite made no check.</p>")
    if rows:
        parts.append(f"<table><tr><th></th><th>check</th><th>detail</th></tr>{rows}</table>")
    parts += _plots(suite)
    return "".join(parts)


def render_html(report: GateReport) -> str:
    verdict = "PASS" if report.passed else "FAIL"
    cls = "pass" if report.passed else "fail"
    sig = report.signature
    signed = (
        f"signed by <code>{escape(sig.get('key_id', '?'))}</code> (Ed25519)"
        if sig
        else "<span class=fail>unsigned: a deploy refuses this report</span>"
    )
    failed = ", ".join(report.failed) or "none"
    source = f" ({escape(report.source)})" if report.source else ""
    summary = "".join(
        f'<tr><td class="{"pass" if s.passed else "fail"}">{"pass" if s.passed else "FAIL"}</td>'
        f'<td><a href="#{escape(s.name)}">{escape(s.name)}</a></td>'
        f"<td>{escape(s.summary())}</td></tr>"
        for s in report.suites
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>system0 gate: {verdict} {escape(report.model_hash[:12])}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>system0 release gate</h1><p class='verdict {cls}'>{verdict}</p>"
        f"<table><tr><th>model</th><td><code>{escape(report.model_hash)}</code> "
        f"{escape(report.model_name)}{source}</td></tr>"
        f"<tr><th>config</th><td><code>{escape(str(report.config_hash))}</code></td></tr>"
        f"<tr><th>failed suites</th><td>{escape(failed)}</td></tr>"
        f"<tr><th>machine class</th><td>{escape(report.machine_class)}</td></tr>"
        f"<tr><th>created</th><td>{escape(report.created)} in {report.seconds:.1f} s, system0 "
        f"{escape(report.system0_version)}</td></tr><tr><th>signature</th><td>{signed}</td></tr></table>"
        f"<table><tr><th></th><th>suite</th><th>summary</th></tr>{summary}</table>"
        + "".join(_suite(s) for s in report.suites)
        + "</body></html>\n"
    )
