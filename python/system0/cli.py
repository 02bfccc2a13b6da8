"""The ``system0`` command. Each part adds its subcommands in its own ``add_*_commands``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="system0", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Imported here so that `system0 --help` stays fast and one part's import error names it.
    from system0.core.config.cli import add_config_commands
    from system0.data.storage.cli import add_data_commands
    from system0.demo import add_demo_command
    from system0.replay import add_replay_command
    from system0.security.audit_cli import add_audit_commands
    from system0.serving.cli import add_serving_commands
    from system0.testing.gate_cli import add_gate_commands

    add_demo_command(sub)
    add_replay_command(sub)
    add_config_commands(sub)
    add_audit_commands(sub)
    add_data_commands(sub)
    add_gate_commands(sub)
    add_serving_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
