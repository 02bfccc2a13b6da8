"""``system0 replay RUN [--match N]``: verify a run folder, then run its decisions again.

Verification comes first, and any failure stops the replay with the reason
(:class:`~system0.errors.IntegrityError`, exit status 1):

1. the manifest's body hashes to its ``sealed`` value, and that hash is the ledger's last
   entry (``run_sealed``): an edited ``run.json`` fails here;
2. the ledger verifies read-only (framing, hash chain, every envelope authenticated with the
   run's keyring, the checkpoint signatures with the manifest's public key) and its signed
   checkpoint is the manifest's and covers every entry: an edited, cut or extended ledger
   fails here, naming the first bad entry;
3. the config file hashes to the manifest's config hash, and the weights in the run to its
   policy hash (the shipped policy is compared too, and the answer said);
4. every stored checksum of the run's datasets holds, the run's tag resolves to the
   manifest's versions, and the decisions table matches the ledger's digest of every batch:
   the matrix the model saw (padding included), the outputs and the actions.

Then each recorded batch is rebuilt as it ran (the same rows in the same order, the same
padding, its SHA-256 checked against the ledger) and run through the run's model on the
backend it ran on (a fallback batch through the fallback policy). Each decision is reported
bit-identical or not; a mismatch names the decision and its first differing output.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.errors import ConfigError, Error, IntegrityError
from system0.game.policy import load_policy
from system0.interfaces.flight_recorder import batch_digest
from system0.run_folder import (
    AUDIT,
    CONFIG,
    DATA,
    body_hash,
    file_sha256,
    open_keys,
    read_manifest,
)

__all__ = ["Mismatch", "ReplayReport", "VerifiedRun", "add_replay_command", "replay", "verify_run"]


@dataclass
class VerifiedRun:
    """A run folder whose manifest, ledger, config, weights and data all checked out."""

    run: Path
    manifest: dict[str, Any]
    entries: list[dict[str, Any]]
    decisions: Any  # pyarrow.Table, or None when nothing was recorded
    digests: dict[int, dict[str, Any]]
    shipped_policy: str | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Mismatch:
    decision: int
    where: str
    recorded_action: int
    replayed_action: int
    output: int | None  # the first differing output, None when only the action differs
    recorded: float | None
    replayed: float | None

    def describe(self) -> str:
        text = f"decision {self.decision} ({self.where})"
        if self.recorded_action != self.replayed_action:
            text += f": action {self.recorded_action} recorded, {self.replayed_action} replayed"
        if self.output is not None:
            text += (
                f"; first differing output {self.output}: recorded {self.recorded!r} "
                f"({float(self.recorded or 0.0).hex()}), replayed {self.replayed!r} "
                f"({float(self.replayed or 0.0).hex()})"
            )
        return text


@dataclass
class ReplayReport:
    run: Path
    backend: str
    device: str
    batches: int
    decisions: int
    identical: int
    mismatches: list[Mismatch]
    fallback_batches: int
    rows: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.identical == self.decisions


def _fail(run: Path, what: str) -> IntegrityError:
    return IntegrityError(f"run folder {run}: {what}")


def _verify_ledger(run: Path, manifest: dict[str, Any], keyring: Any) -> list[dict[str, Any]]:
    from system0.security.audit import AuditLedger, Checkpoint, verify_ledger

    led = manifest.get("ledger")
    if not isinstance(led, dict):
        raise _fail(run, "the manifest has no ledger section")
    try:
        public_key = bytes.fromhex(led["public_key"])
        cp = Checkpoint.from_json(led["checkpoint"])
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(run, f"the manifest's ledger section is malformed ({e!r})") from None
    path = run / AUDIT
    if not path.is_dir():
        raise _fail(run, f"the ledger {path} is missing")
    report = verify_ledger(path, public_key, keyring)  # names the first bad entry
    if not cp.verify(public_key):
        raise _fail(run, "the manifest's checkpoint signature does not verify")
    if report.entries != cp.size:
        raise _fail(
            run,
            f"the ledger holds {report.entries} entries, the manifest's signed checkpoint "
            f"covers {cp.size}: entries were added or dropped after the run",
        )
    if report.root != cp.root or led.get("root") != cp.root.hex():
        raise _fail(run, "the ledger's root is not the one the manifest's checkpoint signed")
    ledger = AuditLedger.open(path, keyring=keyring)
    try:
        if cp not in ledger.checkpoints():
            raise _fail(run, "the manifest's checkpoint is not among the ledger's checkpoints")
        return [ledger.read(i).json() for i in range(ledger.size)]
    finally:
        ledger.close()


def _verify_data(run: Path, manifest: dict[str, Any], entries: list[dict[str, Any]]) -> Any:
    from system0.data.storage import ScalableStorage

    data = manifest.get("data") or {}
    root = run / DATA
    if not (root / "catalog.sqlite").is_file():
        raise _fail(run, f"the storage root {root} is missing")
    written = {
        e["resource"] for e in entries if e.get("type") == "data_access" and e["action"] == "write"
    }
    decisions = None
    with ScalableStorage(root) as storage:
        for name in ("samples", "decisions"):
            want = data.get(name)
            if want is None:
                continue
            storage.verify(name)  # every checksum: IntegrityError names the file
            got = storage.resolve(name, data["tag"]).id
            if got != want["version"]:
                raise _fail(
                    run,
                    f"dataset {name!r}: the tag {data['tag']} resolves to version {got[:16]}, "
                    f"the manifest names {want['version'][:16]}",
                )
            if f"dataset:{name}@{got}" not in written:
                raise _fail(run, f"dataset {name!r} version {got[:16]}: no write in the ledger")
            if name == "decisions":
                decisions = storage.read(name, version=got)
    return decisions


def verify_run(run: str | Path) -> VerifiedRun:
    """Check the run folder (see the module doc, steps 1 to 4); raise what failed."""
    from system0.core.config import load_from_yaml
    from system0.game.policy import policy_weights_path
    from system0.interfaces.model_interface import load_mlp

    run = Path(run)
    manifest = read_manifest(run)
    sealed = body_hash(manifest)
    if manifest.get("sealed") != sealed:
        raise _fail(
            run,
            f"run.json was changed after the run sealed it: its body hashes to {sealed}, the "
            f"seal says {manifest.get('sealed')}",
        )
    keys = open_keys(run)
    entries = _verify_ledger(run, manifest, keys.keyring)
    last = entries[-1] if entries else {}
    if last.get("type") != "run_sealed" or last.get("manifest") != sealed:
        raise _fail(
            run,
            f"run.json hashes to {sealed}, the ledger sealed {last.get('manifest')}: the "
            "manifest is not the one this run wrote",
        )
    config_hash = load_from_yaml(run / CONFIG, trusted_keys=()).content_hash
    if config_hash != manifest["config"]["hash"]:
        raise _fail(
            run,
            f"{CONFIG} hashes to {config_hash}, the manifest names {manifest['config']['hash']}",
        )
    policy = manifest["policy"]
    weights = run / policy["file"]
    if not weights.is_file() or file_sha256(weights) != policy["file_sha256"]:
        raise _fail(run, f"the weights {weights} are missing or changed since the run")
    if load_mlp(weights).content_hash() != policy["hash"]:
        raise _fail(run, f"the weights {weights} are not the policy {policy['hash'][:16]}")
    try:
        shipped: str | None = load_mlp(policy_weights_path()).content_hash()
    except (FileNotFoundError, Error):
        shipped = None
    decisions = _verify_data(run, manifest, entries)
    digests = {int(e["batch_id"]): e for e in entries if e.get("type") == "decision_batch"}
    notes = []
    if shipped == policy["hash"]:
        notes.append(f"policy {policy['hash'][:16]}: the run's copy is the shipped policy")
    else:
        notes.append(
            f"policy {policy['hash'][:16]}: the shipped policy is {str(shipped)[:16]}, not the "
            "one this run used; replaying with the run's own copy"
        )
    return VerifiedRun(run, manifest, entries, decisions, digests, shipped, notes)


# replay ----------------------------------------------------------------------------------------


def _device(backend: str, device: str) -> dict[str, Any]:
    # only torch places a model on a device; numpy and jax take no such option
    return {"device": device} if backend == "torch" else {}


def _first_difference(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> int | None:
    if a.dtype != b.dtype or a.shape != b.shape:
        return 0
    bits = np.dtype(f"u{a.dtype.itemsize}")
    differ = np.flatnonzero(a.view(bits) != b.view(bits))
    return int(differ[0]) if len(differ) else None


def _batches(v: VerifiedRun) -> dict[int, dict[str, Any]]:
    """Each batch's rows from the decisions table, rebuilt as the model saw it and checked
    against the ledger's digest."""
    t = v.decisions
    cols = {
        name: t.column(name).to_pylist()
        for name in ("decision", "batch_id", "row", "batch_rows", "batch_padded", "action")
    }
    cols.update({n: t.column(n).to_pylist() for n in ("fallback", "match", "tick", "champion")})
    width = t.schema.field("features").type.list_size
    outs = t.schema.field("outputs").type.list_size
    feats = t.column("features").combine_chunks().flatten().to_numpy().reshape(-1, width)
    outputs = t.column("outputs").combine_chunks().flatten().to_numpy().reshape(-1, outs)
    order: dict[int, list[int]] = {}
    for i, b in enumerate(cols["batch_id"]):
        order.setdefault(int(b), []).append(i)
    if set(order) != set(v.digests):
        extra = sorted(set(order) - set(v.digests))[:5]
        missing = sorted(set(v.digests) - set(order))[:5]
        raise _fail(
            v.run,
            f"the decisions table and the ledger disagree on the batches recorded (in the table "
            f"only: {extra}; in the ledger only: {missing})",
        )
    out: dict[int, dict[str, Any]] = {}
    for b, idx in order.items():
        idx.sort(key=lambda i: cols["row"][i])
        n, padded = cols["batch_rows"][idx[0]], cols["batch_padded"][idx[0]]
        if [cols["row"][i] for i in idx] != list(range(n)):
            raise _fail(v.run, f"batch {b}: its rows in the decisions table are not 0..{n - 1}")
        x = np.zeros((padded, width), np.float32)  # the engine pads with zero rows
        x[:n] = feats[idx]
        rec = np.ascontiguousarray(outputs[idx])
        acts = np.array([cols["action"][i] for i in idx], np.int64)
        digest = batch_digest(x, rec, acts)
        ledger = v.digests[b]
        for key in ("features_sha256", "features_shape", "outputs_sha256", "actions"):
            if digest[key] != ledger[key]:
                raise _fail(
                    v.run,
                    f"batch {b}: the decisions table's {key.split('_')[0]} differ from the "
                    "ledger's digest of what ran: the stored decisions were altered",
                )
        where = [
            f"match {cols['match'][i]}, tick {cols['tick'][i]}, {cols['champion'][i]}; "
            f"batch {b} row {cols['row'][i]}"
            for i in idx
        ]
        out[b] = {
            "x": x,
            "rows": n,
            "outputs": rec,
            "actions": acts,
            "fallback": bool(cols["fallback"][idx[0]]),
            "decisions": [cols["decision"][i] for i in idx],
            "matches": {cols["match"][i] for i in idx},
            "where": where,
            "match": [cols["match"][i] for i in idx],
        }
    return out


def replay(
    run: str | Path,
    *,
    match: int | None = None,
    backend: str | None = None,
    device: str | None = None,
) -> tuple[VerifiedRun, ReplayReport]:
    """Verify ``run`` and replay its recorded decisions (of match ``match`` only, if given:
    the batches holding them still run whole, as they ran)."""
    from system0.demo import fallback_policy

    v = verify_run(run)
    policy = v.manifest["policy"]
    backend = backend or policy["backend"]
    device = device or policy.get("device") or "cpu"
    if v.decisions is None:
        raise ConfigError(f"run folder {v.run}: nothing was recorded (demo --record off)")
    batches = _batches(v)
    if match is not None:
        played = range(v.manifest["simulation"]["matches"])
        if match not in played:
            raise ConfigError(f"--match {match}: the run played matches 0..{len(played) - 1}")
        batches = {b: d for b, d in batches.items() if match in d["matches"]}
    model = load_policy(backend, weights=v.run / policy["file"], **_device(backend, device))
    n_actions = int(next(iter(batches.values()))["outputs"].shape[1]) if batches else 8
    fallback = fallback_policy(n_actions)
    mismatches: list[Mismatch] = []
    rows: list[dict[str, Any]] = []
    identical = decisions = fb = 0
    for b in sorted(batches):
        d = batches[b]
        n = d["rows"]
        if d["fallback"]:
            fb += 1
            got = np.asarray(fallback(d["x"][:n]))
        else:
            got = np.asarray(model.infer(d["x"]))[:n]
        got_actions = got.argmax(axis=1)
        for j in range(n):
            if match is not None and d["match"][j] != match:
                continue
            decisions += 1
            diff = _first_difference(d["outputs"][j], np.ascontiguousarray(got[j]))
            same = diff is None and int(got_actions[j]) == int(d["actions"][j])
            rows.append(
                {
                    "decision": d["decisions"][j],
                    "where": d["where"][j],
                    "identical": same,
                    "action": int(d["actions"][j]),
                    "replayed_action": int(got_actions[j]),
                    "first_differing_output": diff,
                }
            )
            if same:
                identical += 1
                continue
            rec = d["outputs"][j]
            mismatches.append(
                Mismatch(
                    d["decisions"][j],
                    d["where"][j],
                    int(d["actions"][j]),
                    int(got_actions[j]),
                    diff,
                    float(rec[diff]) if diff is not None and diff < rec.size else None,
                    float(got[j][diff]) if diff is not None and diff < got[j].size else None,
                )
            )
    info = model.introspect()
    report = ReplayReport(
        v.run, info.backend, info.device, len(batches), decisions, identical, mismatches, fb, rows
    )
    return v, report


# command line ----------------------------------------------------------------------------------


def _cmd(args: argparse.Namespace) -> int:
    try:
        v, r = replay(args.folder, match=args.match, backend=args.backend, device=args.device)
    except IntegrityError as e:
        print(f"system0 replay: verification failed: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"system0 replay: {e}", file=sys.stderr)
        return 2
    except Error as e:
        print(f"system0 replay: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    m = v.manifest
    data = m["data"]
    stored = ", ".join(
        f"{k} {data[k]['version'][:12]}" for k in ("samples", "decisions") if k in data
    )
    print(
        f"run {m['run_id']} verified: manifest sealed {m['sealed'][:19]}, ledger "
        f"{len(v.entries)} entries under a signed checkpoint, config {m['config']['hash'][:19]}, "
        f"data {stored}"
    )
    for note in v.notes:
        print(note)
    scope = f"match {args.match}" if args.match is not None else "all matches"
    print(
        f"replayed {r.decisions} decisions ({scope}) in {r.batches} batches on {r.backend} "
        f"({r.device}), {r.fallback_batches} of them fallback batches: {r.identical} "
        f"bit-identical (action and every output), {len(r.mismatches)} differ"
    )
    for mm in r.mismatches[: args.show]:
        print("  " + mm.describe())
    if len(r.mismatches) > args.show:
        print(f"  ... and {len(r.mismatches) - args.show} more (see --report)")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            for row in r.rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")
        print(f"per-decision report written to {args.report}")
    return 0 if r.ok else 1


def add_replay_command(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="verify a run folder and replay its recorded decisions bit for bit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", metavar="RUN", help="the run folder (system0 demo --out)")
    p.add_argument("--match", type=int, default=None, help="only the decisions of this match")
    p.add_argument(
        "--backend",
        choices=("numpy", "torch", "jax"),
        default=None,
        help="replay on this backend (default: the one the run used)",
    )
    p.add_argument("--device", default=None, help="torch device (default: the run's)")
    p.add_argument("--report", default=None, help="write one JSON line per decision here")
    p.add_argument("--show", type=int, default=20, help="mismatches printed (default 20)")
    p.set_defaults(run=_cmd)
