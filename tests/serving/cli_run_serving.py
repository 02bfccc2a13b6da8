"""``system0 ARGS`` in a child process for the server tests (tests/cli_run.py's runner, which
this folder's tests cannot import by name when run alone)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "system0_tests_cli_run", Path(__file__).resolve().parent.parent / "cli_run.py"
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
run_cli = _module.run_cli

__all__ = ["run_cli"]
