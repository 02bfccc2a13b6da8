"""AISecurityManager: access check, then encryption, then audit; noise only on aggregates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from system0.errors import AccessDenied, CryptoError, ValidationError
from system0.security.access_control import Enforcer, Policy, Subject
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring, SigningKey
from system0.security.manager import AISecurityManager

POLICY = Policy.from_yaml(
    """
roles:
  trainer:
    allow: [{resource: "samples/**", action: [read, write]}]
  viewer:
    allow: [{resource: "samples/**", action: read}]
"""
)


def _entries(ledger: AuditLedger) -> list[dict[str, object]]:
    return [ledger.read(i).json() for i in range(ledger.size)]


def test_secure_then_unseal_round_trips_and_the_ledger_never_holds_plaintext(
    tmp_path: Path,
) -> None:
    ring = Keyring.generate()
    with AuditLedger.open(
        tmp_path / "ledger", keyring=ring, signing_key=SigningKey.generate()
    ) as ledger:
        mgr = AISecurityManager(ring, ledger)
        secret = b"match 42: jungle path top->bot"
        envelope = mgr.secure(secret, subject="trainer-1", resource="samples/42", aad=b"42")
        assert secret not in envelope
        assert mgr.unseal(envelope, subject="trainer-1", resource="samples/42", aad=b"42") == secret
        with pytest.raises(CryptoError):
            mgr.unseal(envelope, subject="trainer-1", resource="samples/42", aad=b"43")
        actions = [(e["subject"], e["action"], e["resource"]) for e in _entries(ledger)]
        assert actions == [
            ("trainer-1", "encrypt", "samples/42"),
            ("trainer-1", "decrypt", "samples/42"),
        ]
        meta = _entries(ledger)[0]["metadata"]
        assert isinstance(meta, dict) and meta["bytes"] == len(secret)
        assert "jungle" not in json.dumps(_entries(ledger))
        report = ledger.verify()  # raises IntegrityError on any tampering
        assert report.entries == 2 and report.decrypted


def test_a_denied_subject_gets_nothing_encrypted_and_the_denial_is_recorded(
    tmp_path: Path,
) -> None:
    ring = Keyring.generate()
    with AuditLedger.open(
        tmp_path / "ledger", keyring=ring, signing_key=SigningKey.generate()
    ) as ledger:
        mgr = AISecurityManager(ring, ledger, enforcer=Enforcer(POLICY, audit=ledger))
        trainer = Subject("ana", roles=frozenset({"trainer"}))
        viewer = Subject("bo", roles=frozenset({"viewer"}))
        envelope = mgr.secure(b"sample", subject=trainer, resource="samples/1")
        assert mgr.unseal(envelope, subject=viewer, resource="samples/1") == b"sample"
        before = ledger.size
        with pytest.raises(AccessDenied, match="bo"):
            mgr.secure(b"forged", subject=viewer, resource="samples/1")
        denial = _entries(ledger)[before:]
        assert [(e["subject"], e["decision"]) for e in denial] == [("bo", "deny")]
        with pytest.raises(ValidationError, match="Subject"):
            mgr.secure(b"x", subject="ana", resource="samples/1")


def test_privacy_budget_is_recorded_and_survives_a_restart(tmp_path: Path) -> None:
    ring, signer = Keyring.generate(), SigningKey.generate()
    path = tmp_path / "ledger"
    with AuditLedger.open(path, keyring=ring, signing_key=signer) as ledger:
        mgr = AISecurityManager(ring, ledger, privacy_epsilon=1.0)
        release = mgr.privacy("matches").count(list(range(500)), epsilon=0.75)
        assert not release.exact and release.epsilon == 0.75
        kinds = [e.get("kind") for e in _entries(ledger)]
        assert kinds == ["dp_release"]
    with AuditLedger.open(path, keyring=ring, signing_key=signer) as ledger:
        restarted = AISecurityManager(ring, ledger, privacy_epsilon=1.0)
        assert restarted.privacy("matches").remaining.epsilon == pytest.approx(0.25)


def test_privacy_switched_off_gives_exact_results_that_say_so(tmp_path: Path) -> None:
    ring = Keyring.generate()
    with AuditLedger.open(
        tmp_path / "ledger", keyring=ring, signing_key=SigningKey.generate()
    ) as ledger:
        mgr = AISecurityManager(ring, ledger, privacy_enabled=False)
        release = mgr.privacy("matches").count(list(range(500)), epsilon=0.5)
        assert release.exact and release.value == 500
