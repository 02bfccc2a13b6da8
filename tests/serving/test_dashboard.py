"""The dashboard in headless Chromium (Debian's ``chromium``) against a live server under
traffic: the page polls, plots, and shows the active version; the screenshot is kept as a
test artifact (``$SYSTEM0_TEST_ARTIFACTS``, default ``test-artifacts/`` at the repo root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from .serving_fixtures import Served, body, states

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(
    os.environ.get("SYSTEM0_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,900",
            # real time, not virtual: the page polls a live server on timers
            "--run-all-compositor-stages-before-draw",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dashboard_renders_live_data_in_chromium(served: Served, tmp_path: Path) -> None:
    page = served.client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=served.server.url) as c:
            i = 0
            while not stop.is_set():
                c.post("/v1/models/policy/infer", content=body(states(1, seed=i % 50)[0]))
                if i % 10 == 0:
                    c.post("/v1/models/policy/infer", content=b"[]")  # a rejection to plot
                i += 1

    load = threading.Thread(target=traffic, daemon=True)
    load.start()
    try:
        url = served.server.url + "/dashboard"
        dom = _chromium("--virtual-time-budget=4000", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        # the page polled the server and filled its tiles with what the server said
        assert 'data-polls="' in html, html[-2000:]
        assert served.service.version in html
        assert "model-policy" in html
        shot = tmp_path / "dashboard.png"
        r = _chromium(f"--screenshot={shot}", "--virtual-time-budget=4000", url)
        assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    finally:
        stop.set()
        load.join(10)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a drawn page, not blank
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "dashboard.png")
