"""``system0 audit ...``: verify a ledger and produce or check proofs from the command line.

* ``system0 audit verify PATH [--public-key HEX] [--keyring FILE (--passphrase-env VAR |
  --secret-env VAR)] [--anchor FILE]`` streams the ledger in bounded memory and prints a JSON
  report, including ``uncovered``: the entries appended after the newest signed checkpoint,
  which no signature vouches for yet. ``--anchor`` takes a checkpoint kept outside the
  ledger (see :mod:`system0.security.audit_anchor`) and proves the ledger extends it, so a
  checkpoint file rolled back to an older copy, or a log cut back, is caught. Exit status 1
  and the reason on stderr when anything is wrong. Nothing is repaired.
* ``system0 audit checkpoint PATH --out FILE [--size S]`` exports the newest signed
  checkpoint (or the one of size S) as an anchor file, for an auditor to keep.
* ``system0 audit prove PATH --index N [--size S]`` prints, as JSON, the stored entry, its
  inclusion proof and the signed checkpoint of size S (default: the latest checkpoint).
* ``system0 audit prove PATH --old-size M [--size S]`` prints a consistency proof between
  two checkpointed sizes.
* ``system0 audit check-proof FILE --public-key HEX`` checks such a JSON proof offline, with
  the public key alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from system0.errors import ConfigError, Error
from system0.security.audit import (
    AuditLedger,
    Checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_ledger,
)
from system0.security.audit_anchor import Anchor, export_anchor
from system0.security.keyring_cli import add_keyring_arguments, keyring_from_args


def _public_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    key = bytes.fromhex(text.strip())
    if len(key) != 32:
        raise SystemExit("--public-key must be 64 hex digits (an Ed25519 public key)")
    return key


def _print(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True))


def _trusted_key(given: bytes | None, anchor: Anchor | None) -> bytes | None:
    """The key to trust: the one given on the command line, else the one the auditor kept
    with the anchor (never only the one stored beside the data it is to check)."""
    kept = anchor.public_key if anchor is not None else None
    if given is not None and kept is not None and given != kept:
        raise ConfigError(
            "--public-key differs from the public key kept in the anchor file; the anchor was "
            "kept for another ledger, or one of the two keys is wrong"
        )
    return given if given is not None else kept


def _verify(args: argparse.Namespace) -> int:
    keyring = keyring_from_args(args)
    anchor = Anchor.load(args.anchor) if args.anchor else None
    key = _trusted_key(_public_key(args.public_key), anchor)
    report = verify_ledger(
        args.path, key, keyring, anchor=anchor.checkpoint if anchor is not None else None
    )
    doc: dict[str, Any] = {
        "ok": True,
        "entries": report.entries,
        "root": report.root.hex(),
        "checkpoints": report.checkpoints,
        "checkpointed_entries": report.covered,
        "uncovered": report.uncovered,
        "segments": report.segments,
        "signatures_checked": report.signed,
        "envelopes_checked": report.decrypted,
        "anchor": None,
    }
    if report.anchor is not None:
        doc["anchor"] = {
            "size": report.anchor.size,
            "checkpoint_size": report.anchor.checkpoint_size,
            "consistency_proof": [h.hex() for h in report.anchor.proof],
            "consistent": True,
        }
    _print(doc)
    if report.uncovered:
        print(
            f"note: {report.uncovered} of {report.entries} entries were appended after the "
            f"newest signed checkpoint (size {report.covered}); no signature covers them yet, "
            "so dropping them cannot be detected until a checkpoint is signed",
            file=sys.stderr,
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    anchor = export_anchor(args.path, args.size)
    anchor.save(args.out)
    cp = anchor.checkpoint
    print(f"wrote the checkpoint of size {cp.size} (root {cp.root.hex()}) to {args.out}")
    return 0


def _checkpoint_for(ledger: AuditLedger, size: int | None) -> Checkpoint:
    cps = ledger.checkpoints()
    if not cps:
        raise SystemExit("the ledger has no signed checkpoint yet; proofs need one")
    if size is None:
        return cps[-1]
    for cp in cps:
        if cp.size == size:
            return cp
    raise SystemExit(f"no checkpoint of size {size}; sizes: {[c.size for c in cps]}")


def _prove(args: argparse.Namespace) -> int:
    ledger = AuditLedger.open(args.path)
    cp = _checkpoint_for(ledger, args.size)
    if args.index is not None:
        _print({"kind": "inclusion", **ledger.inclusion_proof(args.index, cp).to_json()})
        return 0
    old = _checkpoint_for(ledger, args.old_size)
    proof = ledger.consistency_proof(old.size, cp.size)
    _print(
        {
            "kind": "consistency",
            "old_checkpoint": old.to_json(),
            "checkpoint": cp.to_json(),
            "proof": [p.hex() for p in proof],
        }
    )
    return 0


def _check_proof(args: argparse.Namespace) -> int:
    doc = json.loads(Path(args.proof).read_text())
    key = _public_key(args.public_key)
    assert key is not None
    cp = Checkpoint.from_json(doc["checkpoint"])
    proof = [bytes.fromhex(p) for p in doc["proof"]]
    ok = cp.verify(key)
    if doc.get("kind") == "consistency":
        old = Checkpoint.from_json(doc["old_checkpoint"])
        ok = (
            ok
            and old.verify(key)
            and verify_consistency(old.size, cp.size, old.root, cp.root, proof)
        )
    else:
        entry = bytes.fromhex(doc["entry"])
        ok = ok and verify_inclusion(entry, int(doc["index"]), cp.size, proof, cp.root)
    print("valid" if ok else "INVALID")
    return 0 if ok else 1


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = fn(args)
            return result
        except Error as e:
            print(f"system0 audit: {type(e).__name__}: {e}", file=sys.stderr)
            return 1

    return run


def add_audit_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``system0 audit verify|checkpoint|prove|check-proof``."""
    audit = sub.add_parser("audit", help="verify the audit ledger, make and check proofs")
    cmds = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    v = cmds.add_parser("verify", help="verify a ledger directory (read-only)")
    v.add_argument("path", type=Path)
    v.add_argument("--public-key", help="the ledger's trusted Ed25519 public key, hex")
    add_keyring_arguments(v, "also authenticate every entry with it")
    v.add_argument(
        "--anchor",
        type=Path,
        help="a checkpoint kept outside the ledger (`audit checkpoint --out`): prove the "
        "ledger extends it",
    )
    v.set_defaults(run=_guard(_verify))

    e = cmds.add_parser("checkpoint", help="export a signed checkpoint as an anchor file")
    e.add_argument("path", type=Path)
    e.add_argument("--out", type=Path, required=True, help="anchor file to write (JSON)")
    e.add_argument("--size", type=int, help="the checkpoint of this size (default: newest)")
    e.set_defaults(run=_guard(_export))

    p = cmds.add_parser("prove", help="print an inclusion or consistency proof as JSON")
    p.add_argument("path", type=Path)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, help="entry to prove")
    which.add_argument("--old-size", type=int, help="checkpointed size to prove consistency from")
    p.add_argument("--size", type=int, help="checkpointed tree size (default: latest)")
    p.set_defaults(run=_guard(_prove))

    c = cmds.add_parser("check-proof", help="check a JSON proof with the public key alone")
    c.add_argument("proof", type=Path)
    c.add_argument("--public-key", required=True, help="the ledger's Ed25519 public key, hex")
    c.set_defaults(run=_guard(_check_proof))
