"""Run every benchmark gate and fail if any ratio falls below its CI gate.

Each module `gate_*.py` beside this file defines `gates() -> list[Gate]`. Usage:
    python benches/gates/run_gates.py [--only SUBSTRING] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import platform
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ratio import Result, measure, report  # noqa: E402


def _load(path: pathlib.Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    results: list[Result] = []
    for path in sorted(HERE.glob("gate_*.py")):
        for gate in _load(path).gates():
            if args.only in gate.name:
                results.append(measure(gate))
    print(f"machine: {platform.machine()} python {platform.python_version()}")
    print(report(results))
    if args.json:
        rows = [
            {
                "name": r.gate.name,
                "ours_ns": r.ours_ns,
                "peer_ns": r.peer_ns,
                "ratio": r.ratio,
                "gate": r.gate.gate,
                "goal": r.gate.goal,
                "peer": r.gate.peer_name,
                "problem": r.problem,
            }
            for r in results
        ]
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=2))
    failed = [r for r in results if not r.passed]
    if failed:
        print(f"{len(failed)} gate(s) below their CI margin", file=sys.stderr)
        return 1
    if not results:
        print("no gates found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
