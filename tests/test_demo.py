"""`system0 demo` runs end to end as a command and reports what it measured."""

import subprocess
import sys
from pathlib import Path


def test_demo_command_reports_throughput_latency_and_energy(tmp_path: Path) -> None:
    log = tmp_path / "demo.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "system0.cli", "demo", "--requests", "500", "--log", str(log)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "served 1000 requests" in out
    assert "p99" in out
    assert "energy:" in out
    assert 'demo_requests_total{worker="0"} 500' in out
    lines = log.read_text().splitlines()
    assert len(lines) == 1000 and '"trace_id"' in lines[0]
