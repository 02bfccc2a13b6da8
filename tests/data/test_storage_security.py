"""Encryption at rest per dataset, and an audit record for every read and write.

The keyring and the ledger are duck-typed collaborators. When ``system0.security`` is
installed its real ``Keyring`` and ``AuditLedger`` are used; otherwise an AES-256-GCM keyring
from the ``cryptography`` package (real AEAD) and an append-only JSON-lines ledger file stand in
for them, implementing the same two-method protocols.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from system0.data.storage import ScalableStorage
from system0.data.storage.policy import StoragePolicy
from system0.data.storage.schema import synthetic_samples
from system0.errors import ConfigError, CryptoError, IntegrityError


class AesGcmKeyring:
    """AES-256-GCM with a random 96-bit nonce per message: nonce || ciphertext || tag."""

    def __init__(self, key: bytes | None = None) -> None:
        self._aead = AESGCM(key or AESGCM.generate_key(bit_length=256))

    def encrypt(self, data: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def decrypt(self, envelope: bytes, aad: bytes = b"") -> bytes:
        return self._aead.decrypt(envelope[:12], envelope[12:], aad)


class JsonlLedger:
    """Appends one JSON line per access to a file, as the audit protocol asks."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def log_data_access(
        self,
        subject: str,
        resource: str,
        action: str,
        decision: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        entry = {"subject": subject, "resource": resource, "action": action}
        entry.update({"decision": decision, "metadata": dict(metadata or {})})
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text().splitlines()]


def _keyring() -> Any:
    try:
        from system0.security.encryption import Keyring  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return AesGcmKeyring()
    return Keyring.generate()


def test_encrypted_dataset_stores_no_plaintext(tmp_path: Path) -> None:
    keyring = _keyring()
    policy = StoragePolicy(hot_max_rows=150)
    with ScalableStorage(tmp_path / "r", keyring=keyring, policy=policy) as s:
        small, large = synthetic_samples(100), synthetic_samples(200, seed=1, start_step=100)
        s.commit(small, dataset="secret", encrypt=True)
        s.commit(large, dataset="secret")  # the dataset's choice holds for later commits
        s.commit(small, dataset="open")
        assert s.read("secret").num_rows == 300
        s.compact("secret", force=True)
        assert s.read("secret").num_rows == 300
        s.verify("secret")
        # SQL runs over the decrypted Arrow table (DuckDB cannot read the encrypted files)
        out = s.query("SELECT count(*) AS n FROM samples", dataset="secret")
        assert out.to_pylist() == [{"n": 300}]
    files = list((tmp_path / "r").rglob("*"))
    blobs = b"".join(f.read_bytes() for f in files if f.is_file())
    # champion names appear in the plaintext dataset, never in the encrypted one's blobs
    secret = b"".join(f.read_bytes() for f in (tmp_path / "r" / "parquet" / "secret").iterdir())
    assert b"Thresh" in blobs and b"PAR1" in blobs
    assert b"Thresh" not in secret and not secret.startswith(b"PAR1")


def test_encryption_is_fixed_per_dataset_and_needs_a_keyring(tmp_path: Path) -> None:
    with ScalableStorage(tmp_path / "r", keyring=_keyring()) as s:
        s.commit(synthetic_samples(10), dataset="secret", encrypt=True)
        with pytest.raises(ConfigError, match="fixed per dataset"):
            s.commit(synthetic_samples(10), dataset="secret", encrypt=False)
    with ScalableStorage(tmp_path / "r") as s:
        with pytest.raises(ConfigError, match="pass keyring"):
            s.read("secret")
    with ScalableStorage(tmp_path / "r2") as s, pytest.raises(ConfigError, match="needs a keyring"):
        s.commit(synthetic_samples(10), dataset="x", encrypt=True)


@pytest.mark.parametrize("make", [AesGcmKeyring, _keyring], ids=["aes-gcm", "system0"])
def test_a_wrong_key_does_not_decrypt(tmp_path: Path, make: Any) -> None:
    with ScalableStorage(tmp_path / "r", keyring=make()) as s:
        s.commit(synthetic_samples(10), dataset="secret", encrypt=True)
    with ScalableStorage(tmp_path / "r", keyring=make()) as s:
        with pytest.raises(CryptoError) as err:
            s.read("secret")
        if make is AesGcmKeyring:  # a foreign keyring's own error is wrapped, kept as cause
            assert isinstance(err.value.__cause__, InvalidTag)
            # it names no keys, so only decrypting tells, and that fails
            with pytest.raises(IntegrityError, match="could not be decrypted"):
                s.verify("secret")
        else:  # a system0 envelope's key commitment says the key is not this keyring's
            report = s.verify("secret")
            assert not report.opened and "sealed under another key" in report.unopened[0][1]


def test_every_read_and_write_is_audited(tmp_path: Path) -> None:
    ledger = JsonlLedger(tmp_path / "audit.jsonl")
    with ScalableStorage(tmp_path / "r", audit=ledger, subject="trainer-7") as s:
        v = s.commit(synthetic_samples(100))
        s.read()
        s.lookup("metadata.step", 3)
        list(s.reader(seed=1, batch_size=50))
        s.query("SELECT count(*) FROM samples")
        s.tag("golden")
    entries = ledger.entries()
    assert [e["action"] for e in entries] == ["write", "read", "read", "read", "read", "tag"]
    assert all(e["subject"] == "trainer-7" and e["decision"] == "allow" for e in entries)
    assert all(e["resource"] == f"dataset:samples@{v.id}" for e in entries)
    assert entries[0]["metadata"]["rows"] == 100
    assert entries[3]["metadata"]["pin"].startswith("samples@")


def test_the_real_audit_ledger_and_keyring_record_storage_access(tmp_path: Path) -> None:
    audit = pytest.importorskip(
        "system0.security.audit", reason="system0.security.audit is not merged into this build"
    )
    from system0.security.encryption import Keyring

    keyring = Keyring.generate()
    ledger = audit.AuditLedger.open(tmp_path / "ledger", keyring=keyring)
    with ScalableStorage(tmp_path / "r", audit=ledger, keyring=keyring, subject="etl") as s:
        v = s.commit(synthetic_samples(10), dataset="secret", encrypt=True)
        assert s.read("secret").num_rows == 10
    entries = [ledger.read(i).json() for i in range(ledger.size)]
    assert [(e["type"], e["action"], e["subject"]) for e in entries] == [
        ("data_access", "write", "etl"),
        ("data_access", "read", "etl"),
    ]
    assert entries[0]["resource"] == f"dataset:secret@{v.id}"
    assert entries[0]["metadata"]["encrypted"] is True
    assert ledger.verify().entries == 2
    ledger.close()


def test_recommitting_encrypted_content_keeps_every_version_readable(tmp_path: Path) -> None:
    """Ciphertexts differ on every write, so blobs are named by their stored bytes: a second
    write of the same segment (after a crash left an orphan, or a plain re-commit) never
    collides with the first."""
    with ScalableStorage(tmp_path / "r", keyring=_keyring()) as s:
        batch = synthetic_samples(50)
        v1 = s.commit(batch, dataset="secret", encrypt=True)
        v2 = s.commit(batch, dataset="secret", overwrite=True)
        assert v1.manifest.segments == v2.manifest.segments
        assert len(s.backends["local"].list("secret")) == 2  # two ciphertexts, one placed
        assert s.gc("secret", grace_s=0) == 1
        for v in (v1, v2):
            assert s.read("secret", version=v.id).equals(batch)
        s.verify("secret")
