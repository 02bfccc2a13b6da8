"""Hardware identity and tokens: roles that count only on an attested device, Ed25519 tokens."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from system0.errors import AccessDenied, ValidationError
from system0.security.access_control import Enforcer, Policy
from system0.security.identity import (
    ATTESTATION_CONTEXT,
    AttestedDevice,
    DeviceIdentity,
    Subject,
    TokenIssuer,
    TokenVerifier,
    _b64,
    _unb64,
    sign_challenge,
)

DEVICE_KEY = Ed25519PrivateKey.generate()
DEVICE = DeviceIdentity.from_public_key(DEVICE_KEY.public_key())
OTHER_KEY = Ed25519PrivateKey.generate()
OTHER = DeviceIdentity.from_public_key(OTHER_KEY.public_key())


def attested(key: Ed25519PrivateKey, identity: DeviceIdentity) -> AttestedDevice:
    challenge = os.urandom(32)
    return identity.attest(challenge, sign_challenge(key, challenge))


def policy() -> Policy:
    return Policy.from_dict(
        {
            "roles": {
                "operator": {"allow": [{"resource": "model/**", "action": "deploy"}]},
                "root": {
                    "allow": [{"resource": "**", "action": "*"}],
                    "devices": [DEVICE.fingerprint],
                },
            },
            "bindings": [
                {"subject": "carol", "role": "operator", "devices": [DEVICE.fingerprint]},
            ],
        }
    )


def test_fingerprint_is_sha256_of_the_raw_public_key() -> None:
    assert DEVICE.fingerprint.startswith("sha256:") and len(DEVICE.fingerprint) == 71
    assert DEVICE.fingerprint != OTHER.fingerprint
    with pytest.raises(ValidationError, match="32 raw bytes"):
        DeviceIdentity(b"short")


def test_attestation_verifies_a_real_signature_and_rejects_others() -> None:
    challenge = os.urandom(32)
    good = DEVICE.attest(challenge, sign_challenge(DEVICE_KEY, challenge))
    assert good.fingerprint == DEVICE.fingerprint
    with pytest.raises(AccessDenied, match="does not verify under this device key"):
        DEVICE.attest(challenge, sign_challenge(OTHER_KEY, challenge))
    with pytest.raises(AccessDenied):
        DEVICE.attest(os.urandom(32), sign_challenge(DEVICE_KEY, challenge))  # other challenge
    # Without the context prefix the signature is not an attestation (no cross-protocol reuse).
    with pytest.raises(AccessDenied):
        DEVICE.attest(challenge, DEVICE_KEY.sign(challenge))
    assert ATTESTATION_CONTEXT.startswith(b"system0")
    with pytest.raises(ValidationError, match="at least 16"):
        DEVICE.attest(b"short", b"\0" * 64)
    with pytest.raises(ValidationError, match="built only by"):
        AttestedDevice(DEVICE.fingerprint, 0)


def test_binding_counts_only_on_the_attested_device() -> None:
    e = Enforcer(policy())
    bare = Subject.of("carol")
    assert not e.check(bare, "model/policy", "deploy").allowed
    on_device = bare.with_device(attested(DEVICE_KEY, DEVICE))
    assert e.check(on_device, "model/policy", "deploy").allowed
    elsewhere = bare.with_device(attested(OTHER_KEY, OTHER))
    assert not e.check(elsewhere, "model/policy", "deploy").allowed


def test_device_bound_role_needs_a_listed_device_even_when_claimed() -> None:
    e = Enforcer(policy())
    claimed = Subject.of("dave", ["root"])
    d = e.check(claimed, "dataset/x", "delete")
    assert not d.allowed and "root would count only on an attested device" in d.reason
    assert e.check(claimed.with_device(attested(DEVICE_KEY, DEVICE)), "dataset/x", "delete")
    assert not e.check(claimed.with_device(attested(OTHER_KEY, OTHER)), "dataset/x", "delete")


ISSUER_KEY = Ed25519PrivateKey.generate()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(clock: Clock) -> tuple[TokenIssuer, TokenVerifier]:
    issuer = TokenIssuer(ISSUER_KEY, "system0-auth", max_ttl_s=600, clock=clock)
    verifier = TokenVerifier(
        ISSUER_KEY.public_key(), audience="ledger", issuer="system0-auth", clock=clock
    )
    return issuer, verifier


def test_token_round_trip_yields_the_subject() -> None:
    clock = Clock(1_800_000_000)
    issuer, verifier = make(clock)
    token = issuer.issue(
        "alice", audience="ledger", roles=["analyst"], domain_roles={"tetris": ["member"]}
    )
    subject = verifier.verify(token)
    assert subject.id == "alice" and subject.roles == frozenset({"analyst"})
    assert subject.roles_in("tetris") == frozenset({"analyst", "member"})
    assert "ISSUER" not in repr(issuer) and "key" not in repr(issuer).lower()


def test_token_expiry_audience_issuer_and_tampering_are_refused() -> None:
    clock = Clock(1_800_000_000)
    issuer, verifier = make(clock)
    token = issuer.issue("alice", audience="ledger", roles=["analyst"], ttl_s=60)
    clock.t += 60 + 30  # within leeway
    verifier.verify(token)
    clock.t += 1
    with pytest.raises(AccessDenied, match="expired"):
        verifier.verify(token)

    clock.t = 1_800_000_000
    wrong_aud = issuer.issue("alice", audience="inference", roles=["analyst"])
    with pytest.raises(AccessDenied, match="audience 'inference' is not 'ledger'"):
        verifier.verify(wrong_aud)
    other_issuer = TokenIssuer(ISSUER_KEY, "someone-else", clock=clock)
    with pytest.raises(AccessDenied, match="issuer"):
        verifier.verify(other_issuer.issue("alice", audience="ledger"))

    header, body, sig = token.split(".")
    claims = json.loads(_unb64(body))
    claims["roles"] = ["admin"]
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{sig}"
    with pytest.raises(AccessDenied, match="bad signature"):
        verifier.verify(forged)
    stranger = TokenIssuer(Ed25519PrivateKey.generate(), "system0-auth", clock=clock)
    with pytest.raises(AccessDenied, match="bad signature"):
        verifier.verify(stranger.issue("alice", audience="ledger"))
    none_alg = _b64(b'{"alg":"none","typ":"JWT"}')
    with pytest.raises(AccessDenied, match="only alg EdDSA"):
        verifier.verify(f"{none_alg}.{body}.{sig}")
    for junk in ("", "a.b", "a.b.c.d", "!!.??.**"):
        with pytest.raises(AccessDenied):
            verifier.verify(junk)
    with pytest.raises(ValidationError, match="short-lived"):
        issuer.issue("alice", audience="ledger", ttl_s=601)


def test_device_bound_token_needs_that_device_attested() -> None:
    clock = Clock(1_800_000_000)
    issuer, verifier = make(clock)
    e = Enforcer(policy())
    token = issuer.issue(
        "erin", audience="ledger", roles=["operator"], device_fingerprint=DEVICE.fingerprint
    )
    subject = verifier.verify(token)
    d = e.check(subject, "model/policy", "deploy")
    assert not d.allowed and "bound to device" in d.reason
    assert e.check(subject.with_device(attested(DEVICE_KEY, DEVICE)), "model/policy", "deploy")
    with pytest.raises(AccessDenied, match="bound to device"):
        subject.with_device(attested(OTHER_KEY, OTHER))
