"""Small inline SVG charts for the gate report: grouped bars and lines, no script, no build.

Each function returns one ``<svg>`` element as text, sized by its ``viewBox`` so it scales with
the page; every label is escaped. Values must be finite and >= 0 (rates, times, counts); a
``None`` value (not measured) is drawn as a gap, never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["bar_chart", "line_chart"]

W, H = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 95
COLORS = ("#3b6ea8", "#d0843b", "#5a9e5a", "#a84a4a", "#7d5aa8")
Series = Mapping[str, Sequence[float | None]]


def _text(
    x: float, y: float, s: str, *, anchor: str = "middle", size: int = 12, extra: str = ""
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>'
        f"{escape(s)}</text>"
    )


def _frame(title: str, top: float, unit: str) -> list[str]:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="chart" role="img">',
        f"<title>{escape(title)}</title>",
        _text(W / 2, 18, title, size=14, extra=' font-weight="bold"'),
    ]
    plot_h = H - TOP - BOTTOM
    for k in range(5):
        y = TOP + plot_h * (1 - k / 4)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(_text(LEFT - 6, y + 4, f"{top * k / 4:.3g}{unit}", anchor="end", size=11))
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        x = LEFT + i * 150
        color = COLORS[i % len(COLORS)]
        out.append(f'<rect x="{x}" y="{H - 18}" width="12" height="12" fill="{color}"/>')
        out.append(_text(x + 16, H - 8, name, anchor="start"))
    return out


def _top(series: Series) -> float:
    top = max((v for vs in series.values() for v in vs if v is not None), default=0.0) * 1.1
    return top if top > 0 else 1.0


def bar_chart(title: str, labels: Sequence[str], series: Series, unit: str = "") -> str:
    """Grouped bars: one group per label, one bar per series; many labels are slanted."""
    top = _top(series)
    out = _frame(title, top, unit)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    group = plot_w / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    slant = len(labels) > 6
    for g, label in enumerate(labels):
        x0 = LEFT + g * group + group * 0.1
        for s, (name, vs) in enumerate(series.items()):
            v = vs[g] if g < len(vs) else None
            if v is None:
                continue
            h = plot_h * v / top
            out.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar * 0.92:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}">'
                f"<title>{escape(f'{name} {label}: {v:.4g}{unit}')}</title></rect>"
            )
        cx, cy = x0 + group * 0.4, TOP + plot_h + 14
        if slant:
            rot = f' transform="rotate(-35 {cx:.1f} {cy:.1f})"'
            out.append(_text(cx, cy, label, anchor="end", size=10, extra=rot))
        else:
            out.append(_text(cx, cy + 2, label))
    out += _legend(list(series))
    out.append("</svg>")
    return "".join(out)


def line_chart(title: str, xs: Sequence[float], series: Series, unit: str = "") -> str:
    """Lines over evenly spaced x labels (``xs``); a series named ``limit...`` is dashed."""
    top = _top(series)
    out = _frame(title, top, unit)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(len(xs) - 1, 1)
    for i, x in enumerate(xs):
        out.append(_text(LEFT + i * step, TOP + plot_h + 16, f"{x:g}"))
    for s, (name, vs) in enumerate(series.items()):
        color = COLORS[s % len(COLORS)]
        pts = [
            (LEFT + i * step, TOP + plot_h * (1 - v / top))
            for i, v in enumerate(vs)
            if v is not None
        ]
        dash = ' stroke-dasharray="6 4"' if name.startswith("limit") else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"{dash}/>'
        )
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>')
    out += _legend(list(series))
    out.append("</svg>")
    return "".join(out)
