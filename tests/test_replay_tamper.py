"""A run folder altered after the run fails replay (and, for the ledger, audit verify) with the
reason; a keyring whose passphrase is missing is an error naming the variable; a replay whose
model answers differently names the decision and its first differing output."""

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from cli_run import run_cli

import system0.replay as replay_mod
from system0.data.storage import ScalableStorage
from system0.errors import IntegrityError
from system0.run_folder import PASSPHRASE_ENV, body_hash, open_keys
from system0.security.audit import AuditLedger

SMALL = ("--matches", "2", "--ticks", "12", "--tick-rate", "1000", "--no-progress")


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(cwd, *args, env=env)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("runs")
    done = _cli(cwd, "demo", *SMALL, "--out", "run", "--no-html")
    assert done.returncode == 0, done.stderr
    return cwd / "run"


@pytest.fixture
def run(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(pristine, copy)
    return copy


def _replay_fails(run: Path, reason: str) -> None:
    r = _cli(run.parent, "replay", str(run))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "verification failed" in r.stderr and reason in r.stderr, r.stderr


def _manifest(run: Path) -> dict[str, Any]:
    return json.loads((run / "run.json").read_text())


def _write(run: Path, m: dict[str, Any]) -> None:
    (run / "run.json").write_text(json.dumps(m))


def test_the_pristine_run_replays(run: Path) -> None:
    r = _cli(run.parent, "replay", str(run))
    assert r.returncode == 0 and " 0 differ" in r.stdout, r.stderr


def test_an_edited_manifest_fails(run: Path) -> None:
    m = _manifest(run)
    m["policy"]["backend"] = "torch"
    _write(run, m)
    _replay_fails(run, "run.json was changed after the run sealed it")
    # audit verify checks the ledger, which is intact: the manifest is replay's to check
    assert _cli(run.parent, "audit", "verify", str(run / "audit")).returncode == 0


def test_a_resealed_manifest_fails_against_the_ledger(run: Path) -> None:
    m = _manifest(run)
    m["simulation"]["seed"] = 99
    m["sealed"] = body_hash(m)  # whoever edits it can recompute the hash, not the ledger
    _write(run, m)
    _replay_fails(run, "the ledger sealed")


def test_a_damaged_ledger_fails_replay_and_audit_verify(run: Path) -> None:
    seg = next((run / "audit").glob("seg-*.s0l"))
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))
    _replay_fails(run, "damaged")
    audit = _cli(run.parent, "audit", "verify", str(run / "audit"))
    assert audit.returncode == 1 and "IntegrityError" in audit.stderr


def test_an_extended_ledger_fails(run: Path) -> None:
    keys = open_keys(run)
    with AuditLedger.open(run / "audit", keyring=keys.keyring) as ledger:
        ledger.append({"type": "forged", "note": "appended after the run"})
    _replay_fails(run, "entries were added or dropped after the run")


def test_damaged_data_fails(run: Path) -> None:
    db = sqlite3.connect(run / "data" / "local.sqlite")
    blob = bytearray(db.execute("SELECT data FROM blobs WHERE dataset = 'decisions'").fetchone()[0])
    blob[len(blob) // 2] ^= 0x01
    db.execute("UPDATE blobs SET data = ? WHERE dataset = 'decisions'", (bytes(blob),))
    db.commit()
    db.close()
    _replay_fails(run, "checksum mismatch")
    data = _cli(run.parent, "data", "--root", str(run / "data"), "verify")
    assert data.returncode == 1 and "checksum mismatch" in data.stderr


def test_rewritten_decisions_fail(run: Path) -> None:
    m = _manifest(run)
    with ScalableStorage(run / "data") as s:
        t = s.read("decisions", version=m["run_id"])
        actions = t.column("action").to_numpy().copy()
        actions[0] = (actions[0] + 1) % 8
        i = t.schema.get_field_index("action")
        forged = t.set_column(i, "action", pa.array(actions))
        v = s.commit(forged, dataset="decisions")
        s.tag(m["run_id"], dataset="decisions", version=v.id, move=True)
    _replay_fails(run, "resolves to version")
    # and with the manifest pointed at the forged version too, the seal breaks
    m["data"]["decisions"]["version"] = v.id
    _write(run, m)
    _replay_fails(run, "run.json was changed")


def test_edited_config_and_weights_fail(run: Path) -> None:
    cfg = run / "config.yaml"
    original = cfg.read_text()
    cfg.write_text(original.replace("max_batch: 32", "max_batch: 16"))
    _replay_fails(run, "config.yaml hashes to")
    cfg.write_text(original)
    weights = next((run / "model").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    _replay_fails(run, "are missing or changed since the run")


def test_a_missing_key_file_is_an_error_not_a_new_key(run: Path) -> None:
    (run / "keys" / "master.key").unlink()
    r = _cli(run.parent, "replay", str(run))
    assert r.returncode == 2 and "master.key is missing" in r.stderr
    assert not (run / "keys" / "master.key").exists()


def test_passphrase_sealed_run(tmp_path: Path) -> None:
    short = _cli(tmp_path, "demo", *SMALL, "--out", "s", env={PASSPHRASE_ENV: "short"})
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert not (tmp_path / "s").exists()
    env = {PASSPHRASE_ENV: "correct horse battery staple"}
    made = _cli(tmp_path, "demo", *SMALL, "--out", "p", "--no-html", env=env)
    assert made.returncode == 0 and f"passphrase from ${PASSPHRASE_ENV}" in made.stdout
    run = tmp_path / "p"
    assert not (run / "keys" / "master.key").exists()
    missing = _cli(tmp_path, "replay", "p")
    assert missing.returncode == 2 and PASSPHRASE_ENV in missing.stderr
    assert not (run / "keys" / "master.key").exists()  # no new key was made
    wrong = _cli(tmp_path, "replay", "p", env={PASSPHRASE_ENV: "not the passphrase"})
    assert wrong.returncode == 2
    assert " 0 differ" in _cli(tmp_path, "replay", "p", env=env).stdout
    deep = _cli(
        tmp_path,
        "audit",
        "verify",
        "p/audit",
        "--keyring",
        "p/keys/keyring",
        "--passphrase-env",
        PASSPHRASE_ENV,
        env=env,
    )
    assert deep.returncode == 0 and json.loads(deep.stdout)["envelopes_checked"]


def test_a_different_answer_names_the_decision_and_output(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = replay_mod.load_policy

    class Nudged:
        def __init__(self, model: Any) -> None:
            self.model = model

        def infer(self, x: Any) -> Any:
            out = np.array(self.model.infer(x), copy=True)
            out[0, 3] = np.nextafter(out[0, 3], np.float32(1))  # one ulp, first row only
            return out

        def introspect(self) -> Any:
            return self.model.introspect()

    monkeypatch.setattr(replay_mod, "load_policy", lambda *a, **k: Nudged(real(*a, **k)))
    _, report = replay_mod.replay(run)
    assert not report.ok and len(report.mismatches) == report.batches
    first = report.mismatches[0]
    assert first.output == 3 and first.recorded != first.replayed
    text = first.describe()
    assert text.startswith(f"decision {first.decision} (match ") and "output 3" in text


def test_verify_run_raises_integrity_errors(run: Path) -> None:
    (run / "run.json").write_text("{not json")
    with pytest.raises(IntegrityError, match="not a readable manifest"):
        replay_mod.verify_run(run)
