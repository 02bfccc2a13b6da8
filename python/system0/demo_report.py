"""The report of ``system0 demo``: figures as text, and an HTML page with inline SVG plots.

The HTML is one self-contained file (no script, no external asset): a latency-over-time plot
(each answered request a dot, the budget a line), a latency histogram, and the batch-size
distribution, followed by the same table the terminal shows.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DemoFigures", "render_html", "render_text"]


@dataclass
class DemoFigures:
    backend: str
    matches: int
    ticks: int
    tick_rate: float
    budget_ms: float
    wall_s: float
    answered: int
    fallbacks: int
    overloaded: int
    deadline_exceeded: int
    invalid: int
    agreement: float
    latencies_ns: np.ndarray  # per answered request, total time from submit
    finished_at_s: np.ndarray  # per answered request, seconds since the start
    batch_sizes: dict[int, int]
    joules: float | None
    joules_reason: str
    spans: int
    samples: int
    audit: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.answered / self.wall_s if self.wall_s > 0 else 0.0

    def quantile_ms(self, q: float) -> float:
        if len(self.latencies_ns) == 0:
            return math.nan
        return float(np.quantile(self.latencies_ns, q)) / 1e6

    @property
    def breaches(self) -> int:
        over = int((self.latencies_ns > self.budget_ms * 1e6).sum())
        return over + self.deadline_exceeded

    def rows(self) -> list[tuple[str, str]]:
        submitted = self.answered + self.overloaded + self.deadline_exceeded + self.invalid
        energy = (
            f"{self.joules:.3f} J ({self.joules / max(1, self.answered) * 1e3:.4f} mJ/request)"
            if self.joules is not None
            else f"not available ({self.joules_reason})"
        )
        return [
            ("backend", self.backend),
            ("matches x ticks @ rate", f"{self.matches} x {self.ticks} @ {self.tick_rate:g}/s"),
            ("budget", f"{self.budget_ms:g} ms"),
            ("requests", f"{submitted} submitted, {self.answered} answered"),
            ("throughput", f"{self.throughput:,.0f} answers/s over {self.wall_s:.2f} s"),
            (
                "latency p50 / p99 / p99.9",
                f"{self.quantile_ms(0.5):.3f} / {self.quantile_ms(0.99):.3f} / "
                f"{self.quantile_ms(0.999):.3f} ms",
            ),
            ("budget breaches", f"{self.breaches} (answered late or deadline exceeded)"),
            ("rejections", f"{self.overloaded} overloaded, {self.invalid} invalid"),
            ("fallback answers", f"{self.fallbacks} (flagged)"),
            ("agreement with the scripted player", f"{self.agreement:.1%}"),
            ("batch sizes", _dist(self.batch_sizes)),
            ("energy", energy),
            ("spans recorded", str(self.spans)),
            ("training samples recorded", str(self.samples)),
            ("audit", self.audit),
            *self.extra.items(),
        ]


def _dist(sizes: dict[int, int]) -> str:
    total = sum(sizes.values())
    if not total:
        return "none"
    parts = [f"{k}:{v}" for k, v in sorted(sizes.items())]
    mean = sum(k * v for k, v in sizes.items()) / total
    return f"mean {mean:.1f} over {total} batches  [" + " ".join(parts[:24]) + "]"


def render_text(fig: DemoFigures) -> str:
    rows = fig.rows()
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _scatter(
    t: np.ndarray, lat_ms: np.ndarray, budget_ms: float, w: int = 720, h: int = 260
) -> str:
    pad = 40
    if len(t) == 0:
        return "<p>no answered requests</p>"
    tmax = max(float(t.max()), 1e-9)
    ymax = max(float(np.quantile(lat_ms, 0.999)) * 1.2, budget_ms * 1.1)
    step = max(1, len(t) // 4000)  # at most ~4000 dots keep the page light
    xs = pad + (t[::step] / tmax) * (w - 2 * pad)
    ys = h - pad - np.minimum(lat_ms[::step] / ymax, 1.0) * (h - 2 * pad)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.3"/>' for x, y in zip(xs, ys, strict=True)
    )
    by = h - pad - (budget_ms / ymax) * (h - 2 * pad)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="latency over time">'
        f'<rect width="{w}" height="{h}" fill="#fff"/>'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#333"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#333"/>'
        f'<g fill="#1f77b4" fill-opacity="0.5">{dots}</g>'
        f'<line x1="{pad}" y1="{by:.1f}" x2="{w - pad}" y2="{by:.1f}" stroke="#d62728" '
        f'stroke-dasharray="5,4"/>'
        f'<text x="{w - pad}" y="{by - 4:.1f}" text-anchor="end" font-size="11" fill="#d62728">'
        f"budget {budget_ms:g} ms</text>"
        f'<text x="{pad}" y="{pad - 8}" font-size="11">latency (ms), max shown {ymax:.2f}</text>'
        f'<text x="{w - pad}" y="{h - 10}" text-anchor="end" font-size="11">'
        f"time since start (s), {tmax:.1f}</text></svg>"
    )


def _bars(
    labels: Sequence[str], values: Sequence[float], title: str, w: int = 720, h: int = 200
) -> str:
    pad = 40
    if not values:
        return ""
    vmax = max(values) or 1.0
    bw = (w - 2 * pad) / len(values)
    bars = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        bh = (v / vmax) * (h - 2 * pad)
        x = pad + i * bw
        bars.append(
            f'<rect x="{x + 1:.1f}" y="{h - pad - bh:.1f}" width="{max(bw - 2, 1):.1f}" '
            f'height="{bh:.1f}" fill="#2ca02c"><title>{html.escape(lab)}: {v:g}</title></rect>'
        )
        if len(values) <= 32 or i % max(1, len(values) // 16) == 0:
            bars.append(
                f'<text x="{x + bw / 2:.1f}" y="{h - pad + 14}" font-size="10" '
                f'text-anchor="middle">{html.escape(lab)}</text>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="{html.escape(title)}"><rect width="{w}" height="{h}" fill="#fff"/>'
        f'<text x="{pad}" y="{pad - 10}" font-size="11">{html.escape(title)}</text>'
        + "".join(bars)
        + "</svg>"
    )


def render_html(fig: DemoFigures) -> str:
    lat_ms = fig.latencies_ns / 1e6
    if len(lat_ms):
        top = max(float(np.quantile(lat_ms, 0.999)), fig.budget_ms)
        counts, edges = np.histogram(np.minimum(lat_ms, top), bins=40, range=(0, top))
        hist = _bars([f"{e:.2f}" for e in edges[:-1]], counts.tolist(), "latency histogram (ms)")
    else:
        hist = ""
    sizes = sorted(fig.batch_sizes)
    batch = _bars([str(s) for s in sizes], [fig.batch_sizes[s] for s in sizes], "batches by size")
    table = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in fig.rows()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>system0 demo report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:800px}}
th{{text-align:left;padding-right:1em;font-weight:600}}td,th{{padding:2px 6px}}
table{{border-collapse:collapse}}tr:nth-child(odd){{background:#f4f4f4}}</style></head>
<body><h1>system0 demo</h1>
<p>Policy answers for simulated matches, through the inference engine, inside a
{fig.budget_ms:g} ms budget.</p>
<h2>Latency over time</h2>{_scatter(fig.finished_at_s, lat_ms, fig.budget_ms)}
<h2>Latency distribution</h2>{hist}
<h2>Dynamic batching</h2>{batch}
<h2>Figures</h2><table>{table}</table>
</body></html>
"""
