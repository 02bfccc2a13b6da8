"""Rollback of a ledger directory is caught by whoever kept a later checkpoint (an anchor).

Real ledgers on disk: the attacks are done to the files the way an intruder would do them
(an older ``checkpoints.s0c`` copied back, the log cut at a record boundary, a fork of the
directory), then ``system0 audit verify --anchor`` is run on the result.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from system0.cli import main
from system0.errors import IntegrityError, NotFound, ValidationError
from system0.security.audit import AuditLedger, verify_consistency, verify_ledger
from system0.security.audit_anchor import ANCHOR_FORMAT, Anchor, export_anchor
from system0.security.encryption import Keyring, SigningKey

SEG_HEADER = 36


class Run:
    """A ledger with checkpoints at 5 and 10 entries and 2 entries after the last one."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp = tmp
        self.capsys = capsys
        self.dir = tmp / "ledger"
        self.keyring = Keyring.generate()
        self.signer = SigningKey.generate()
        with self.open() as ledger:
            ledger.append_many({"k": k} for k in range(5))
            ledger.checkpoint()
            self.old_checkpoints = (self.dir / "checkpoints.s0c").read_bytes()
            shutil.copytree(self.dir, tmp / "at5")  # the directory as it stood at size 5
            ledger.append_many({"k": k} for k in range(5, 10))
            ledger.checkpoint()
            ledger.append_many({"k": k} for k in range(10, 12))

    def open(self, path: Path | None = None) -> AuditLedger:
        return AuditLedger.open(
            path or self.dir, keyring=self.keyring, signing_key=self.signer, fsync="never"
        )

    @property
    def pk(self) -> str:
        return self.signer.public_key.hex()

    def export(self, name: str, *extra: str, ledger: Path | None = None) -> Path:
        out = self.tmp / name
        args = ["audit", "checkpoint", str(ledger or self.dir), "--out", str(out), *extra]
        assert main(args) == 0
        assert f"to {out}" in self.capsys.readouterr().out
        return out

    def verify(self, *extra: str) -> int:
        return main(["audit", "verify", str(self.dir), "--public-key", self.pk, *extra])


def cut_log(ledger: Path, keep: int) -> None:
    """Drop every record after the first ``keep``, at a record boundary (no torn write)."""
    [seg] = sorted(ledger.glob("seg-*.s0l"))
    data = seg.read_bytes()
    at = SEG_HEADER
    for _ in range(keep):
        (n,) = struct.unpack_from("<I", data, at)
        at += 4 + n + 4
    seg.write_bytes(data[:at])


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path, capsys)


def test_verify_reports_the_entries_no_checkpoint_covers(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run.verify() == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["entries"] == 12 and report["checkpointed_entries"] == 10
    assert report["uncovered"] == 2 and report["anchor"] is None
    assert "2 of 12 entries were appended after the newest signed checkpoint" in captured.err
    with run.open() as ledger:
        ledger.checkpoint()
    assert run.verify() == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["uncovered"] == 0 and "note:" not in captured.err


def test_an_anchor_the_ledger_extends_holds(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    latest, older = run.export("latest.json"), run.export("older.json", "--size", "5")
    doc = json.loads(latest.read_text())
    assert doc["format"] == ANCHOR_FORMAT and doc["size"] == 10
    assert doc["public_key"] == run.pk
    assert run.verify("--anchor", str(latest)) == 0
    out = json.loads(capsys.readouterr().out)["anchor"]
    assert out == {"size": 10, "checkpoint_size": 10, "consistency_proof": [], "consistent": True}
    # the kept public key is used when none is given on the command line
    assert main(["audit", "verify", str(run.dir), "--anchor", str(older)]) == 0
    out = json.loads(capsys.readouterr().out)["anchor"]
    assert out["size"] == 5 and out["checkpoint_size"] == 10 and out["consistency_proof"]
    # the proof printed is a real RFC 9162 proof between the two signed tree heads
    a, b = Anchor.load(older).checkpoint, Anchor.load(latest).checkpoint
    proof = [bytes.fromhex(h) for h in out["consistency_proof"]]
    assert verify_consistency(a.size, b.size, a.root, b.root, proof)
    assert not verify_consistency(a.size, b.size, b.root, a.root, proof)


def test_an_older_checkpoint_file_swapped_in_is_caught(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = run.export("kept.json")
    (run.dir / "checkpoints.s0c").write_bytes(run.old_checkpoints)
    # on its own the directory still verifies: only the uncovered count gives it away
    assert run.verify() == 0
    assert json.loads(capsys.readouterr().out)["uncovered"] == 7
    assert run.verify("--anchor", str(anchor)) == 1
    err = capsys.readouterr().err
    assert "IntegrityError" in err and "newest signed checkpoint covers only 5" in err
    assert "older copy" in err


def test_a_truncated_tail_is_caught(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    anchor = run.export("kept.json")
    cut_log(run.dir, 5)
    assert run.verify() == 1  # the checkpoint of 10 entries still names the cut
    assert "checkpoint 1 covers 10 entries but the ledger holds 5" in capsys.readouterr().err
    (run.dir / "checkpoints.s0c").write_bytes(run.old_checkpoints)  # and the cover-up
    assert run.verify() == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 5
    assert run.verify("--anchor", str(anchor)) == 1
    err = capsys.readouterr().err
    assert "the anchor covers 10 entries but the ledger holds 5" in err
    assert "tail was dropped" in err
    with pytest.raises(IntegrityError, match="tail was dropped"):
        verify_ledger(run.dir, run.signer.public_key, anchor=Anchor.load(anchor).checkpoint)


def test_a_forged_anchor_is_refused(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    kept = json.loads(run.export("kept.json").read_text())
    for field, value in [
        ("root", "00" * 32),
        ("size", 12),  # claims the uncovered entries, with the old signature
        ("time_unix_ns", kept["time_unix_ns"] + 1),
    ]:
        forged = run.tmp / f"forged-{field}.json"
        forged.write_text(json.dumps({**kept, field: value}))
        assert run.verify("--anchor", str(forged)) == 1
        err = capsys.readouterr().err
        assert "does not carry a valid signature" in err and "forged" in err, field
    # a genuine checkpoint of another ledger does not vouch for this one
    (run.tmp / "other").mkdir()
    other = Run(run.tmp / "other", capsys)
    foreign = run.export("foreign.json", ledger=other.dir)
    assert run.verify("--anchor", str(foreign)) == 1  # its kept key is not the trusted one
    assert "differs from the public key kept in the anchor" in capsys.readouterr().err
    assert main(["audit", "verify", str(run.dir), "--anchor", str(foreign)]) == 1
    assert "different public key than the trusted one" in capsys.readouterr().err
    keyless = run.tmp / "keyless.json"
    keyless.write_text(json.dumps({**json.loads(foreign.read_text()), "public_key": None}))
    assert run.verify("--anchor", str(keyless)) == 1
    assert "belongs to ledger" in capsys.readouterr().err


def test_a_forked_history_fails_the_consistency_proof(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same ledger, same keys, copied at size 5 and grown differently: its checkpoint at 8
    # is genuinely signed, but this ledger's first 8 entries are not the ones it signed.
    fork = run.tmp / "at5"
    with run.open(fork) as ledger:
        ledger.append_many({"forked": k} for k in range(3))
        ledger.checkpoint()
    anchor = run.export("fork.json", ledger=fork)
    assert json.loads(anchor.read_text())["size"] == 8
    assert run.verify("--anchor", str(anchor)) == 1
    err = capsys.readouterr().err
    assert "consistency proof from the anchor (size 8)" in err and "forked" in err


def test_bad_anchor_files_are_named(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    bad = run.tmp / "bad.json"
    bad.write_text("not json")
    assert run.verify("--anchor", str(bad)) == 1
    assert "ValidationError" in capsys.readouterr().err
    doc = json.loads(run.export("kept.json").read_text())
    del doc["root"]
    with pytest.raises(ValidationError, match="'root' is missing"):
        Anchor.from_json(doc)
    with pytest.raises(ValidationError, match="must be 64 bytes"):
        Anchor.from_json({**doc, "root": "00" * 32, "signature": "ab"})
    with pytest.raises(ValidationError, match="format"):
        Anchor.from_json({**doc, "format": "something/v9"})
    assert main(["audit", "verify", str(run.dir), "--anchor", str(run.tmp / "none.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_export_needs_a_signed_checkpoint(tmp_path: Path) -> None:
    with AuditLedger.open(tmp_path / "l", keyring=Keyring.generate()) as ledger:
        ledger.append({"k": 1})
    with pytest.raises(NotFound, match="no signed checkpoint"):
        export_anchor(tmp_path / "l")
    assert main(["audit", "checkpoint", str(tmp_path / "l"), "--out", str(tmp_path / "a")]) == 1
