"""``system0 audit verify|prove|check-proof`` on a real ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from system0.cli import main
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring, PassphraseKeyProvider, SigningKey


@pytest.fixture
def ledger_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, SigningKey]:
    monkeypatch.setenv("S0_PASS", "a passphrase for the cli test")
    ring = Keyring.create(
        tmp_path / "ring.s0k", PassphraseKeyProvider("a passphrase for the cli test")
    )
    signer = SigningKey.generate()
    ledger = AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer)
    for k in range(4):
        ledger.log_data_access("bob", f"model/{k}", "infer", "allow")
    ledger.checkpoint()
    for k in range(4, 9):
        ledger.append({"k": k})
    ledger.checkpoint()
    return tmp_path, signer


def test_verify_prints_a_report_and_fails_on_damage(
    ledger_dir: tuple[Path, SigningKey], capsys: pytest.CaptureFixture[str]
) -> None:
    root, signer = ledger_dir
    pk = signer.public_key.hex()
    args = ["audit", "verify", str(root / "l"), "--public-key", pk]
    assert main([*args, "--keyring", str(root / "ring.s0k"), "--passphrase-env", "S0_PASS"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["entries"] == 9 and report["checkpoints"] == 2
    assert report["signatures_checked"] and report["envelopes_checked"]
    seg = next((root / "l").glob("seg-*.s0l"))
    data = bytearray(seg.read_bytes())
    data[200] ^= 1
    seg.write_bytes(bytes(data))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "IntegrityError" in err and "entry 0:" in err


def test_prove_and_check_proof_round_trip(
    ledger_dir: tuple[Path, SigningKey], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root, signer = ledger_dir
    pk = signer.public_key.hex()
    assert main(["audit", "prove", str(root / "l"), "--index", "2"]) == 0
    inclusion = capsys.readouterr().out
    (tmp_path / "inc.json").write_text(inclusion)
    assert json.loads(inclusion)["checkpoint"]["size"] == 9
    assert main(["audit", "check-proof", str(tmp_path / "inc.json"), "--public-key", pk]) == 0
    assert capsys.readouterr().out.strip() == "valid"

    assert main(["audit", "prove", str(root / "l"), "--old-size", "4", "--size", "9"]) == 0
    (tmp_path / "con.json").write_text(capsys.readouterr().out)
    assert main(["audit", "check-proof", str(tmp_path / "con.json"), "--public-key", pk]) == 0
    assert capsys.readouterr().out.strip() == "valid"

    doc = json.loads(inclusion)
    doc["index"] = 3
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    assert main(["audit", "check-proof", str(tmp_path / "bad.json"), "--public-key", pk]) == 1
    assert capsys.readouterr().out.strip() == "INVALID"
    other = SigningKey.generate().public_key.hex()
    assert main(["audit", "check-proof", str(tmp_path / "inc.json"), "--public-key", other]) == 1
