"""Fixtures of the server tests (helpers in serving_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from serving_fixtures import AUDIENCE, ISSUER, POLICY, Admin, Served, pinned, serve

from system0.security.access_control import Enforcer, Policy
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring, SigningKey
from system0.security.identity import TokenIssuer, TokenVerifier
from system0.serving.admin import AdminAuth
from system0.serving.wire import Limits


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    key = Ed25519PrivateKey.generate()
    ledger = AuditLedger.open(
        tmp_path / "audit", keyring=Keyring.generate(), signing_key=SigningKey.generate()
    )
    verifier = TokenVerifier(key.public_key(), audience=AUDIENCE, issuer=ISSUER)
    auth = AdminAuth(verifier, Enforcer(Policy.from_dict(POLICY)), ledger)
    yield Admin(auth, TokenIssuer(key, ISSUER), ledger)
    ledger.close()


@pytest.fixture
def served(admin: Admin) -> Iterator[Served]:
    yield from serve(pinned(), auth=admin.auth, limits=Limits(max_body_bytes=64 * 1024))
