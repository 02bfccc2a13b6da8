"""``system0 config ...``: show, hash, validate, fork, diff, keygen, sign and verify configs.

Exit codes: 0 success (for ``diff``: no differences), 1 ``diff`` found differences, 2 an
error, printed to stderr as ``error: <message>`` (never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from system0.core.config import aiconfig as cfg
from system0.core.config import signing
from system0.core.config.diff import diff
from system0.errors import ConfigError, Error

Command = Callable[[argparse.Namespace], int]


def _guarded(fn: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except Error as e:
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:
            print(f"error: {e.strerror or e}: {e.filename or ''}", file=sys.stderr)
        except Exception as e:  # a bug in system0: still no traceback for the user
            print(
                f"error: internal error ({type(e).__name__}): {e}; please report it",
                file=sys.stderr,
            )
        return 2

    return run


def _load(path: str, trusted: list[str] | None = None) -> cfg.AIConfig:
    return cfg.load_from_yaml(path, trusted_keys=trusted or None)


def _cmd_show(args: argparse.Namespace) -> int:
    config = _load(args.path)
    if args.set:
        config = config.fork_for_experiment(args.experiment, args.set)
    sys.stdout.write(config.canonical_json().decode() + "\n" if args.json else config.to_yaml())
    return 0


def _cmd_hash(args: argparse.Namespace) -> int:
    print(_load(args.path).content_hash)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    config = _load(args.path)
    print(f"{args.path}: valid (schema version {config.schema_version}, {config.content_hash})")
    return 0


def _cmd_fork(args: argparse.Namespace) -> int:
    fork = _load(args.path).fork_for_experiment(args.name, args.overrides)
    if args.out:
        Path(args.out).write_text(fork.to_yaml(), encoding="utf-8")
        print(f"{args.out}: experiment {args.name!r} {fork.content_hash}")
    else:
        sys.stdout.write(fork.to_yaml())
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    result = diff(_load(args.a), _load(args.b), include_lineage=args.lineage)
    sys.stdout.write(result.to_json() if args.json else result.render())
    return 1 if result else 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    private, public = signing.generate_keypair(args.path)
    key = signing.load_public_key(public)
    print(f"private key {private} (keep it secret), public key {public}, id {signing.key_id(key)}")
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    sig_path, sig = cfg.sign_file(args.path, args.key, out=args.out)
    print(f"{sig_path}: signed {sig.content_hash} with {sig.key_id}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    trusted = signing.trusted_keys(args.trusted or None)
    if not trusted:
        raise ConfigError(
            f"{args.path}: no trusted keys: pass --trusted PUBLIC_KEY or set "
            f"{signing.TRUSTED_KEYS_ENV}"
        )
    config, key = cfg.verify_file(args.path, trusted_keys=trusted.values(), signature=args.sig)
    print(f"{args.path}: signature OK ({config.content_hash} signed by {key})")
    return 0


def add_config_commands(sub: Any) -> None:
    """Add ``system0 config`` and its subcommands to the top-level subparsers ``sub``."""
    top = sub.add_parser("config", help="show, diff, sign and verify configurations")
    cs = top.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")

    def add(name: str, fn: Command, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cs.add_parser(name, help=help_, description=help_)
        p.set_defaults(run=_guarded(fn))
        return p

    p = add("show", _cmd_show, "print the resolved configuration (every default filled in)")
    p.add_argument("path")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="override (repeatable)")
    p.add_argument("--experiment", default="cli", help="experiment name for --set (default cli)")
    p.add_argument("--json", action="store_true", help="print the canonical JSON form")

    p = add("hash", _cmd_hash, "print the content hash (id) of the resolved configuration")
    p.add_argument("path")

    p = add("validate", _cmd_validate, "load and validate a configuration")
    p.add_argument("path")

    p = add("fork", _cmd_fork, "derive an experiment configuration with overrides")
    p.add_argument("path")
    p.add_argument("name", help="experiment name")
    p.add_argument("overrides", nargs="*", metavar="PATH=VALUE")
    p.add_argument("-o", "--out", help="write the fork here instead of stdout")

    p = add("diff", _cmd_diff, "compare two configurations (exit 1 when they differ)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true", help="structured output")
    p.add_argument("--lineage", action="store_true", help="also compare lineage")

    p = add("keygen", _cmd_keygen, "create an Ed25519 key pair: PATH and PATH.pub")
    p.add_argument("path", help="where to write the private key")

    p = add("sign", _cmd_sign, "write a detached signature PATH.sig over the resolved config")
    p.add_argument("path")
    p.add_argument("--key", required=True, help="Ed25519 private key (PEM, PKCS#8)")
    p.add_argument("--out", help="signature file (default PATH.sig)")

    p = add("verify", _cmd_verify, "check the signature of a configuration")
    p.add_argument("path")
    p.add_argument(
        "--trusted",
        action="append",
        metavar="PUBLIC_KEY",
        help="trusted public key file or directory (repeatable; default: the files named "
        f"by ${signing.TRUSTED_KEYS_ENV})",
    )
    p.add_argument("--sig", help="signature file (default PATH.sig)")


__all__ = ["add_config_commands"]
