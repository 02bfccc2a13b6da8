"""Run the `system0` command in a child process, as a user would, for the end-to-end tests."""

import os
import subprocess
import sys
from pathlib import Path

from system0.run_folder import PASSPHRASE_ENV


def run_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """``system0 ARGS`` in ``cwd``; the run passphrase of the caller's environment is dropped,
    so a test sets it only where it means to (``env``)."""
    full = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "system0.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
        cwd=cwd,
        env=full,
    )
