"""``system0 data verify`` on a root holding encrypted datasets, with and without the key.

The ciphertext's checksums are checked without the key, an intact encrypted dataset is named
as "not opened" (never as corrupt), and real damage to the ciphertext is still caught.
Real files: the analytical tier writes one file per blob under ``parquet/<dataset>/``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from system0.cli import main
from system0.data.storage import ScalableStorage
from system0.data.storage.policy import StoragePolicy
from system0.data.storage.schema import synthetic_samples
from system0.security.encryption import Keyring, PassphraseKeyProvider

PASS = "a passphrase for the data verify test"
POLICY = StoragePolicy(hot_max_rows=10)  # every commit below goes to files on disk


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("S0_PASS", PASS)
    ring = Keyring.create(tmp_path / "ring.s0k", PassphraseKeyProvider(PASS))
    root = tmp_path / "root"
    with ScalableStorage(root, keyring=ring, policy=POLICY) as s:
        s.commit(synthetic_samples(100), dataset="secret", encrypt=True)
        s.commit(synthetic_samples(120, seed=1, start_step=100), dataset="secret")
        s.commit(synthetic_samples(50), dataset="samples")
    return root


def data(root: Path, *args: str) -> int:
    return main(["data", "--root", str(root), *args])


def with_key(root: Path) -> list[str]:
    return ["--keyring", str(root.parent / "ring.s0k"), "--passphrase-env", "S0_PASS"]


def blobs(root: Path, dataset: str) -> list[Path]:
    found = sorted((root / "parquet" / dataset).glob("*.parquet"))
    assert found, f"no blob files for {dataset}"
    return found


def test_without_the_key_the_ciphertext_is_checked_and_the_dataset_named(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert data(root, "verify") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("samples: ok (")
    assert lines[1].startswith("secret: ciphertext ok, not opened (2 version(s)")
    assert "2 blob(s)" in lines[1] and "no keyring was given" in lines[1]
    assert lines[2].startswith("not opened for lack of the key: secret")
    assert data(root, "verify", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["unopened"] == ["secret"]
    secret = {d["dataset"]: d for d in doc["datasets"]}["secret"]
    assert secret["encrypted"] and not secret["opened"] and secret["blobs"] == 2
    assert secret["bytes"] == sum(p.stat().st_size for p in blobs(root, "secret"))
    assert [u["reason"] for u in secret["unopened"]] == ["no keyring was given"] * 2
    report = ScalableStorage(root).verify("secret")  # the Python API says the same
    assert report.encrypted and not report.opened and len(report.unopened) == 2


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_ciphertext_is_caught_without_the_key(
    root: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    victim = blobs(root, "secret")[1]
    raw = bytearray(victim.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
    else:
        del raw[-16:]
    victim.write_bytes(bytes(raw))
    for extra in ([], with_key(root)):
        assert data(root, "verify", "secret", *extra) == 1
        err = capsys.readouterr().err
        assert err.startswith("integrity error: checksum mismatch in ") and victim.name in err


def test_with_the_key_every_blob_is_decrypted_and_decoded(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert data(root, "verify", *with_key(root)) == 0
    out = capsys.readouterr().out
    assert "secret: ok (2 version(s), 2 segment placement(s), 2 blob(s)" in out
    assert "not opened" not in out
    assert data(root, "verify", "--json", *with_key(root)) == 0
    assert json.loads(capsys.readouterr().out)["unopened"] == []


def test_a_key_shredded_or_absent_is_a_lack_of_key_not_corruption(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = Keyring.load(root.parent / "ring.s0k", PassphraseKeyProvider(PASS))
    [old] = [k.key_id for k in ring.key_info()]
    new = ring.rotate()
    with ScalableStorage(root, keyring=ring, policy=POLICY) as s:
        s.commit(synthetic_samples(30, seed=2, start_step=300), dataset="secret")
    ring.destroy(old)  # crypto-shred what the first key sealed; saved to the file at once
    assert data(root, "verify", "secret", "--json", *with_key(root)) == 0
    [secret] = json.loads(capsys.readouterr().out)["datasets"]
    assert secret["blobs"] == 3 and not secret["opened"]
    reasons = [u["reason"] for u in secret["unopened"]]
    assert reasons == [f"its key {old} was destroyed (crypto-shredded)"] * 2
    # a keyring holding only other keys names the one it lacks
    stranger = Keyring.generate()
    assert new not in {k.key_id for k in stranger.key_info()}
    report = ScalableStorage(root, keyring=stranger).verify("secret")
    assert f"its key {new} is not in the keyring given" in {why for _, why in report.unopened}


def test_another_keyring_with_the_same_key_id_is_a_lack_of_key(
    root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The envelope's key commitment tells the keyring's key 1 from the one that sealed it.
    Keyring.create(tmp_path / "other.s0k", PassphraseKeyProvider(PASS))
    other = ["--keyring", str(tmp_path / "other.s0k"), "--passphrase-env", "S0_PASS"]
    assert data(root, "verify", "secret", *other) == 0
    out = capsys.readouterr().out
    assert "secret: ciphertext ok, not opened" in out
    assert "sealed under another key than the keyring's key 1" in out


def test_ciphertext_rewritten_with_its_catalog_checksum_fails_to_authenticate(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An intruder who rewrites a blob and its checksum in the catalog passes the checksum;
    # with the key, the AEAD tag still catches it.
    victim = blobs(root, "secret")[0]
    raw = bytearray(victim.read_bytes())
    raw[100] ^= 0x01
    victim.write_bytes(bytes(raw))
    with sqlite3.connect(root / "catalog.sqlite") as db:
        db.execute(
            "UPDATE placements SET blob_sha256 = ? WHERE blob = ?",
            (hashlib.sha256(raw).hexdigest(), victim.stem),
        )
    assert data(root, "verify", "secret") == 0  # without the key nothing can tell
    capsys.readouterr()
    assert data(root, "verify", "secret", *with_key(root)) == 1
    err = capsys.readouterr().err
    assert "could not be decrypted, though its ciphertext matches the catalog's checksum" in err
    assert victim.name in err
