"""``system0 gate`` as a user runs it: the progress bar on a terminal only, exit codes that say
pass (0), fail (1) and bad input (2), and an empty red-team folder that fails the gate."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_run import run_cli

from system0.core.config import AIConfig
from system0.testing import GateReport


def test_bad_input_exits_2_with_the_reason(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "gate", str(tmp_path / "missing.safetensors"), "--no-progress")
    assert done.returncode == 2
    assert "no such file or folder" in done.stderr
    done = run_cli(tmp_path, "gate", "--signing-key", str(tmp_path / "nokey"), "--no-progress")
    assert done.returncode == 2 and "cannot read private key" in done.stderr


def test_on_a_terminal_a_bar_and_an_empty_red_team_folder_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "deploy.yaml").write_text("schema_version: 2\ninference:\n  max_batch: 16\n")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "system0.cli",
            "gate",
            "--red-team",
            "empty",
            "--config",
            "deploy.yaml",
            "--out",
            "r",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=300)
    os.close(leader)
    assert proc.returncode == 1, out
    bar = seen.decode()
    assert "[" in bar and "6/6 done" in bar and "\r" in bar
    assert "red_team: FAILED" in out and "an empty red-team folder is not a pass" in out
    report = GateReport.read(tmp_path / "r" / "gate-report.json")
    assert report.config_hash == AIConfig.load_from_yaml(tmp_path / "deploy.yaml").content_hash
    assert report.failed == ["red_team"]
    assert "unsigned" in out
