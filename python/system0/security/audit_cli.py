"""``system0 audit ...``: verify a ledger and produce or check proofs from the command line.

* ``system0 audit verify PATH [--public-key HEX] [--keyring FILE (--passphrase-env VAR |
  --secret-env VAR)]`` streams the ledger in bounded memory; exit status 1 and the first bad
  entry on stderr when anything is wrong. Nothing is repaired.
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
import os
import sys
from pathlib import Path
from typing import Any

from system0.errors import Error
from system0.security.audit import (
    AuditLedger,
    Checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_ledger,
)
from system0.security.encryption import EnvKeyProvider, Keyring, PassphraseKeyProvider
from system0.security.key_provider import KeyProvider


def _public_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    key = bytes.fromhex(text.strip())
    if len(key) != 32:
        raise SystemExit("--public-key must be 64 hex digits (an Ed25519 public key)")
    return key


def _provider(args: argparse.Namespace) -> KeyProvider:
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise SystemExit(f"environment variable {args.passphrase_env} is empty or unset")
        return PassphraseKeyProvider(value)
    if args.secret_env:
        return EnvKeyProvider(args.secret_env)
    raise SystemExit("--keyring needs --passphrase-env VAR or --secret-env VAR")


def _print(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True))


def _verify(args: argparse.Namespace) -> int:
    keyring = Keyring.load(args.keyring, _provider(args)) if args.keyring else None
    report = verify_ledger(args.path, _public_key(args.public_key), keyring)
    _print(
        {
            "ok": True,
            "entries": report.entries,
            "root": report.root.hex(),
            "checkpoints": report.checkpoints,
            "segments": report.segments,
            "signatures_checked": report.signed,
            "envelopes_checked": report.decrypted,
        }
    )
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
    """Register ``system0 audit verify|prove|check-proof``."""
    audit = sub.add_parser("audit", help="verify the audit ledger, make and check proofs")
    cmds = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    v = cmds.add_parser("verify", help="verify a ledger directory (read-only)")
    v.add_argument("path", type=Path)
    v.add_argument("--public-key", help="the ledger's trusted Ed25519 public key, hex")
    v.add_argument("--keyring", type=Path, help="also authenticate every entry with this keyring")
    v.add_argument("--passphrase-env", help="variable holding the keyring passphrase")
    v.add_argument("--secret-env", help="variable holding the keyring's env secret")
    v.set_defaults(run=_guard(_verify))

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
