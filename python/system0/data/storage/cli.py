"""``system0 data ...``: list datasets and versions, show a manifest, export, verify, tag, gc.

The storage root comes from ``--root``, else ``$SYSTEM0_DATA_ROOT``, else ``system0-data``.
Exit codes: 0 success, 1 ``verify`` found corruption, 2 any other error, printed to stderr as
``error: <message>`` (never a traceback).

``verify`` on an encrypted dataset checks the ciphertext's checksums without the key; with
``--keyring FILE`` (and ``--passphrase-env VAR`` or ``--secret-env VAR``) it also decrypts and
decodes every blob. A dataset it could not open for lack of the key is named on its line and
at the end, and is not corruption: the exit status stays 0. ``--json`` prints one JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from system0.errors import Error, IntegrityError

if TYPE_CHECKING:  # imported on use: `system0 --help` needs neither pyarrow nor the catalog
    from system0.data.storage.integrity import VerifyReport
    from system0.data.storage.router import ScalableStorage

Command = Callable[[argparse.Namespace], int]


def _guarded(fn: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except IntegrityError as e:
            print(f"integrity error: {e}", file=sys.stderr)
            return 1
        except Error as e:
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:
            print(f"error: {e.strerror or e}: {e.filename or ''}", file=sys.stderr)
        return 2

    return run


def _open(args: argparse.Namespace, keyring: Any = None) -> ScalableStorage:
    from system0.data.storage.router import ScalableStorage

    root = args.root or os.environ.get("SYSTEM0_DATA_ROOT") or "system0-data"
    if not os.path.isdir(root):
        raise Error(f"no storage at {root!r}; pass --root or set SYSTEM0_DATA_ROOT")
    return ScalableStorage(root, keyring=keyring)


def _cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as s:
        names = [args.dataset] if args.dataset else s.datasets()
        for name in names:
            tags: dict[str, list[str]] = {}
            for tag, vid in s.catalog.tags(name):
                tags.setdefault(vid, []).append(tag)
            encrypted = " (encrypted)" if s.catalog.is_encrypted(name) else ""
            print(f"{name}{encrypted}")
            for v in s.versions(name):
                label = f"  [{', '.join(tags[v.id])}]" if v.id in tags else ""
                msg = f"  {v.message}" if v.message else ""
                print(f"  {v.seq:>4}  {v.id[:16]}  {v.rows:>10} rows{label}{msg}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as s:
        v = s.resolve(args.dataset, args.version)
        body = json.loads(v.manifest.canonical())
        body.update({"id": v.id, "seq": v.seq, "rows": v.rows, "message": v.message})
        body["placements"] = [
            {"segment": p.segment, "tier": p.backend, "blob": p.blob, "offset": p.row_offset}
            for p in s.catalog.placements(args.dataset)
            if p.segment in {seg.id for seg in v.manifest.segments}
        ]
        print(json.dumps(body, indent=2, sort_keys=True))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    with _open(args) as s:
        rows = s.export_parquet(args.out, dataset=args.dataset, version=args.version)
    print(f"wrote {rows} rows to {args.out}")
    return 0


def _verify_line(r: VerifyReport) -> str:
    counts = f"{r.versions} version(s), {r.segments} segment placement(s), {r.blobs} blob(s)"
    if r.opened:
        return f"{r.dataset}: ok ({counts}, {r.bytes} bytes verified)"
    reasons = sorted({why for _, why in r.unopened})
    return (
        f"{r.dataset}: ciphertext ok, not opened ({counts}, {r.bytes} encrypted bytes checked "
        f"against their SHA-256; {len(r.unopened)} blob(s) not decrypted: {'; '.join(reasons)})"
    )


def _verify_json(r: VerifyReport) -> dict[str, Any]:
    return {
        "dataset": r.dataset,
        "ok": True,
        "encrypted": r.encrypted,
        "opened": r.opened,
        "versions": r.versions,
        "segments": r.segments,
        "blobs": r.blobs,
        "bytes": r.bytes,
        "unopened": [{"location": where, "reason": why} for where, why in r.unopened],
    }


def _cmd_verify(args: argparse.Namespace) -> int:
    from system0.security.keyring_cli import keyring_from_args

    with _open(args, keyring_from_args(args)) as s:
        names = [args.dataset] if args.dataset else s.datasets()
        reports = []
        for name in names:
            r = s.verify(name, version=args.version)
            reports.append(r)
            if not args.json:
                print(_verify_line(r))
    unopened = [r.dataset for r in reports if not r.opened]
    if args.json:
        doc = {"ok": True, "datasets": [_verify_json(r) for r in reports], "unopened": unopened}
        print(json.dumps(doc, indent=2, sort_keys=True))
    elif unopened:
        print(
            f"not opened for lack of the key: {', '.join(unopened)} (their ciphertext is intact; "
            "pass --keyring FILE with --passphrase-env VAR or --secret-env VAR to check their "
            "contents too)"
        )
    return 0


def _cmd_tag(args: argparse.Namespace) -> int:
    with _open(args) as s:
        vid = s.tag(args.tag, dataset=args.dataset, version=args.version, move=args.move)
    print(f"{args.dataset}: {args.tag} -> {vid}")
    return 0


def _cmd_gc(args: argparse.Namespace) -> int:
    with _open(args) as s:
        dropped = s.retain(args.dataset, keep_last=args.keep_last) if args.keep_last else []
        gone = s.gc(args.dataset, grace_s=args.grace_s)
    print(f"{args.dataset}: dropped {len(dropped)} version(s), deleted {gone} unreferenced blob(s)")
    return 0


def add_data_commands(sub: Any) -> None:
    """Register ``system0 data`` and its subcommands on the top-level subparsers."""
    data = sub.add_parser("data", help="versioned training data: list, show, export, verify")
    data.add_argument("--root", default=None, help="storage root (default $SYSTEM0_DATA_ROOT)")
    cmds = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    p = cmds.add_parser("list", help="datasets, their versions and tags")
    p.add_argument("dataset", nargs="?", default=None)
    p.set_defaults(run=_guarded(_cmd_list))

    p = cmds.add_parser("show", help="a version's manifest (JSON)")
    p.add_argument("dataset")
    p.add_argument("version", nargs="?", default=None, help="tag or id (default: latest)")
    p.set_defaults(run=_guarded(_cmd_show))

    p = cmds.add_parser("export", help="write a version to one Parquet file")
    p.add_argument("dataset")
    p.add_argument("out", help="output .parquet path")
    p.add_argument("--version", default=None, help="tag or id (default: latest)")
    p.set_defaults(run=_guarded(_cmd_export))

    p = cmds.add_parser("verify", help="check every stored checksum (exit 1 on corruption)")
    p.add_argument("dataset", nargs="?", default=None)
    p.add_argument("--version", default=None, help="only this tag or id")
    p.add_argument("--json", action="store_true", help="print one JSON report")
    from system0.security.keyring_cli import add_keyring_arguments

    add_keyring_arguments(p, "also decrypt and decode encrypted datasets")
    p.set_defaults(run=_guarded(_cmd_verify))

    p = cmds.add_parser("tag", help="pin a version under a name (tags are kept by retention)")
    p.add_argument("dataset")
    p.add_argument("tag")
    p.add_argument("--version", default=None, help="tag or id (default: latest)")
    p.add_argument("--move", action="store_true", help="move an existing tag")
    p.set_defaults(run=_guarded(_cmd_tag))

    p = cmds.add_parser("gc", help="retention and removal of unreferenced blobs")
    p.add_argument("dataset")
    p.add_argument("--keep-last", type=int, default=0, help="keep the newest N versions + tags")
    p.add_argument("--grace-s", type=float, default=3600.0, help="spare blobs younger than this")
    p.set_defaults(run=_guarded(_cmd_gc))


__all__ = ["add_data_commands"]
