"""The audit ledger: appends, reads, checkpoints, proofs a third party can check, threads."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from system0.errors import CryptoError, IntegrityError
from system0.security.audit import (
    AuditLedger,
    Checkpoint,
    leaf_hash,
    merkle_root,
    verify_consistency,
    verify_inclusion,
    verify_ledger,
)
from system0.security.encryption import Keyring, SigningKey


@pytest.fixture
def keys() -> tuple[Keyring, SigningKey]:
    return Keyring.generate(), SigningKey.generate()


def test_append_read_and_log_data_access(tmp_path: Path, keys: tuple[Keyring, SigningKey]) -> None:
    ring, signer = keys
    with AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer) as ledger:
        assert ledger.append(b"raw bytes") == 0
        assert ledger.append({"b": 2, "a": 1}) == 1
        i = ledger.log_data_access("alice", "dataset/matches", "read", "allow", {"rows": 10})
        assert i == 2
        assert ledger.append_many([b"x", b"y", {"z": 1}]) == 3
        assert ledger.size == 6
        assert ledger.read(0).data == b"raw bytes"
        assert ledger.read(1).data == b'{"a":1,"b":2}'
        access = ledger.read(2).json()
        assert access == {
            "type": "data_access",
            "subject": "alice",
            "resource": "dataset/matches",
            "action": "read",
            "decision": "allow",
            "metadata": {"rows": 10},
        }
        times = [ledger.read(k).time_unix_ns for k in range(6)]
        assert times == sorted(times)
    # Entries are encrypted on disk: the plaintext appears nowhere in the files.
    blob = b"".join(p.read_bytes() for p in (tmp_path / "l").iterdir())
    assert b"dataset/matches" not in blob and b"raw bytes" not in blob
    again = AuditLedger.open(tmp_path / "l", keyring=ring)
    assert again.size == 6 and again.read(5).json() == {"z": 1}
    assert again.verify().entries == 6


def test_checkpoints_and_proofs_verify_with_the_public_key_alone(
    tmp_path: Path, keys: tuple[Keyring, SigningKey]
) -> None:
    ring, signer = keys
    ledger = AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer)
    for k in range(5):
        ledger.append({"n": k})
    cp5 = ledger.checkpoint()
    for k in range(5, 13):
        ledger.append({"n": k})
    cp13 = ledger.checkpoint()
    public = signer.public_key
    # What the auditor receives: JSON documents and the public key, nothing else.
    doc = json.loads(json.dumps(ledger.inclusion_proof(3, cp13).to_json()))
    cp = Checkpoint.from_json(doc["checkpoint"])
    assert cp.verify(public)
    entry = bytes.fromhex(doc["entry"])
    proof = [bytes.fromhex(p) for p in doc["proof"]]
    assert verify_inclusion(entry, doc["index"], cp.size, proof, cp.root)
    assert not verify_inclusion(entry, 4, cp.size, proof, cp.root)
    # The signature is plain Ed25519 over the documented message: pyca/cryptography agrees.
    message = (
        b"system0/ledger/checkpoint/v1\x00"
        + cp.ledger_id
        + cp.size.to_bytes(8, "little")
        + cp.root
        + cp.time_unix_ns.to_bytes(8, "little")
    )
    Ed25519PublicKey.from_public_bytes(public).verify(cp.signature, message)
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(public).verify(cp.signature, message + b"x")
    forged = Checkpoint(cp.ledger_id, cp.size + 1, cp.root, cp.time_unix_ns, cp.signature)
    assert not forged.verify(public)
    assert not cp.verify(SigningKey.generate().public_key)
    # Consistency: the 13-entry tree extends the signed 5-entry tree.
    cproof = ledger.consistency_proof(5, 13)
    assert verify_consistency(5, 13, cp5.root, cp13.root, cproof)
    assert not verify_consistency(5, 13, cp13.root, cp5.root, cproof)
    # The tree hashes stored bytes: recomputing it from raw entries gives the signed root.
    raws = [ledger.raw_entry(k) for k in range(13)]
    assert merkle_root(raws) == cp13.root
    assert leaf_hash(raws[0]) != leaf_hash(raws[1])
    assert [c.size for c in ledger.checkpoints()] == [5, 13]
    report = verify_ledger(tmp_path / "l", public_key=public)
    assert (report.entries, report.checkpoints, report.signed, report.decrypted) == (
        13,
        2,
        True,
        False,
    )
    assert report.root == cp13.root


def test_many_threads_append_at_once(tmp_path: Path, keys: tuple[Keyring, SigningKey]) -> None:
    ring, signer = keys
    ledger = AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer)
    seen: list[int] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for k in range(200):
            i = ledger.append({"thread": t, "k": k})
            with lock:
                seen.append(i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1200))
    per_thread: dict[int, list[int]] = {}
    for k in range(1200):
        doc = ledger.read(k).json()
        per_thread.setdefault(doc["thread"], []).append(doc["k"])
    assert all(v == list(range(200)) for v in per_thread.values())
    ledger.checkpoint()
    assert ledger.verify(signer.public_key).entries == 1200


def test_segments_roll_and_everything_still_verifies(
    tmp_path: Path, keys: tuple[Keyring, SigningKey]
) -> None:
    ring, signer = keys
    ledger = AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer, segment_bytes=4096)
    for k in range(100):
        ledger.append(bytes(100) + k.to_bytes(4, "little"))
    ledger.checkpoint()
    segments = sorted((tmp_path / "l").glob("seg-*.s0l"))
    assert len(segments) >= 3
    again = AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer, segment_bytes=4096)
    assert again.read(99).data.endswith((99).to_bytes(4, "little"))
    assert again.append(b"more") == 100
    report = verify_ledger(tmp_path / "l", signer.public_key, ring)
    assert report.entries == 101 and report.segments == len(segments) and report.decrypted


def test_fsync_policies_and_bad_options(tmp_path: Path, keys: tuple[Keyring, SigningKey]) -> None:
    ring, _ = keys
    for policy in ("always", "interval", "never"):
        ledger = AuditLedger.open(tmp_path / policy, keyring=ring, fsync=policy)  # type: ignore[arg-type]
        ledger.append_many([b"a"] * 10)
        ledger.close()
        assert verify_ledger(tmp_path / policy).entries == 10
    with pytest.raises(ValueError, match="fsync must be"):
        AuditLedger.open(tmp_path / "x", keyring=ring, fsync="sometimes")  # type: ignore[arg-type]


def test_keys_are_required_for_what_needs_them(
    tmp_path: Path, keys: tuple[Keyring, SigningKey]
) -> None:
    ring, signer = keys
    AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer).append(b"x")
    auditor = AuditLedger.open(tmp_path / "l")
    assert auditor.raw_entry(0)
    with pytest.raises(CryptoError, match="keyring"):
        auditor.append(b"y")
    with pytest.raises(CryptoError, match="keyring"):
        auditor.read(0)
    with pytest.raises(CryptoError, match="identity key"):
        auditor.checkpoint()
    with pytest.raises(CryptoError, match="not the one this ledger records"):
        AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=SigningKey.generate())
    with pytest.raises(IntegrityError, match="different public key"):
        verify_ledger(tmp_path / "l", public_key=SigningKey.generate().public_key)
    # Another keyring cannot read the entries, and deep verification says which one fails.
    with pytest.raises(IntegrityError, match="entry 0"):
        verify_ledger(tmp_path / "l", keyring=Keyring.generate())


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=40),
    cuts=st.lists(st.integers(1, 40), max_size=4),
    data=st.data(),
)
def test_any_history_of_appends_and_checkpoints_proves_out(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    cuts: list[int],
    data: st.DataObject,
) -> None:
    ring, signer = Keyring.generate(), SigningKey.generate()
    ledger = AuditLedger.open(
        tmp_path_factory.mktemp("h") / "l", keyring=ring, signing_key=signer, segment_bytes=4096
    )
    checkpoints = []
    for n, size in enumerate(sizes, start=1):
        ledger.append(bytes([n % 256]) * size)
        if n in cuts or n == len(sizes):
            checkpoints.append(ledger.checkpoint())
    public = signer.public_key
    for old, new in itertools.pairwise(checkpoints):
        proof = ledger.consistency_proof(old.size, new.size)
        assert verify_consistency(old.size, new.size, old.root, new.root, proof)
    last = checkpoints[-1]
    index = data.draw(st.integers(0, last.size - 1))
    assert ledger.inclusion_proof(index, last).verify(public)
    assert ledger.read(index).data == bytes([(index + 1) % 256]) * sizes[index]
    assert ledger.verify(public).entries == len(sizes)


def test_crypto_shredding_an_entry_key_keeps_the_audit_chain_verifiable(tmp_path: Path) -> None:
    ring, signer = Keyring.generate(), SigningKey.generate()
    ledger = AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer)
    ledger.log_data_access("carol", "player/99/history", "export", "allow")
    ledger.log_data_access("carol", "player/99/history", "read", "allow")
    old_key = ring.primary_key_id
    assert old_key is not None
    ring.rotate()
    ledger.append({"after": "rotation"})
    ledger.checkpoint()
    ring.destroy(old_key)  # the player asked to be forgotten
    with pytest.raises(CryptoError, match="destroyed"):
        ledger.read(0)
    assert ledger.read(2).json() == {"after": "rotation"}
    report = ledger.verify(signer.public_key)
    assert (report.entries, report.shredded, report.decrypted) == (3, 2, True)
    assert verify_ledger(tmp_path / "l", signer.public_key).entries == 3
