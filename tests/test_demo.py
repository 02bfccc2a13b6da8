"""`system0 demo` runs end to end as a command and reports what it measured."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from system0.data.serialization import FEATURE_NAMES


def _demo(tmp_path: Path, *extra: str) -> str:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "system0.cli",
            "demo",
            "--matches",
            "2",
            "--ticks",
            "40",
            "--tick-rate",
            "200",
            "--no-progress",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
        cwd=tmp_path,
    ).stdout


def test_demo_reports_and_writes_html_samples_and_logs(tmp_path: Path) -> None:
    log = tmp_path / "demo.jsonl"
    out = _demo(
        tmp_path, "--samples", "s.npz", "--log", str(log), "--corrupt", "0.1", "--audit", "led"
    )
    for needle in (
        "throughput",
        "p50 / p99 / p99.9",
        "budget breaches",
        "rejections",
        "batch sizes",
        "energy",
        "fallback answers",
    ):
        assert needle in out
    assert "480 submitted" in out
    if importlib.util.find_spec("system0.security.audit") is not None:
        assert "3 entries in" in out and "inclusion proof verified" in out
        assert (tmp_path / "led" / "audit").is_dir()
    invalid = int(out.split("overloaded, ")[1].split(" invalid")[0])
    assert 10 < invalid < 100  # about 10 % of 480 records were corrupted and refused
    page = (tmp_path / "system0-demo-report.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<circle" in page
    samples = np.load(tmp_path / "s.npz")
    assert samples["features"].shape == (480, len(FEATURE_NAMES))
    assert samples["actions"].shape == (480,)
    lines = log.read_text().splitlines()
    assert len(lines) == 80 and '"trace_id"' in lines[0]


def test_demo_no_html_and_bad_options(tmp_path: Path) -> None:
    _demo(tmp_path, "--no-html")
    assert not (tmp_path / "system0-demo-report.html").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "system0.cli", "demo", "--budget", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "--budget" in bad.stderr


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_demo_runs_on_framework_backends(tmp_path: Path, backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} absent: pip install 'system0[{backend}]'")
    out = _demo(tmp_path, "--backend", backend, "--out", "r.html")
    assert f"{backend} (" in out and (tmp_path / "r.html").exists()
