"""``system0 demo``: the main job on a synthetic workload (filled in as parts land)."""

from __future__ import annotations

import argparse
from typing import Any


def run_demo(args: argparse.Namespace) -> int:
    from system0 import _core

    print(f"system0 {_core.__version__}: clock source {_core.clock_source()}")
    return 0


def add_demo_command(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the main job on a synthetic workload")
    p.set_defaults(run=run_demo)
