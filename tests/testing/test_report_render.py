"""The report's plots render in headless Chromium: a screenshot of a failing report is taken
and kept (``$SYSTEM0_ARTIFACTS`` or pytest's temporary folder), and it holds the colours of
the charts, not a blank page. Skipped, with the reason, where Chromium is not installed."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from gate_variants import moved_bias, shipped_mlp

from system0.interfaces.model_interface import NumpyModelInterface
from system0.testing import AITestingSuite
from system0.testing.report_html import render_html

CHROMIUM = next(
    (c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None
)


def png_pixels(path: Path) -> tuple[int, int, int, bytes]:
    """Width, height, channels and the raw (filtered) scanlines of an 8-bit RGB(A) PNG, read
    with zlib alone (no Pillow needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * channels)
    return width, height, channels, raw


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/apt-gate.sh)")
def test_the_report_plots_render_in_headless_chromium(tmp_path: Path) -> None:
    model = NumpyModelInterface(moved_bias(shipped_mlp()), name="drifted")
    report = AITestingSuite(model).run()
    assert not report.passed
    page = tmp_path / "gate-report.html"
    html = render_html(report)
    page.write_text(html)
    # golden errors, refusals by reason, latency, throughput, flip rate, confidence drop
    assert html.count("<svg") == 6 and "<script" not in html
    out = Path(os.environ.get("SYSTEM0_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    shot = out / "gate-report.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,4200",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, height, channels, raw = png_pixels(shot)
    assert (width, height) == (1100, 4200)
    # not a blank page: a large share of scanlines carry more than the background
    stride = 1 + width * channels
    lines = [raw[i * stride + 1 : (i + 1) * stride] for i in range(0, height, 50)]
    assert sum(len(set(line)) > 8 for line in lines) > len(lines) // 3
