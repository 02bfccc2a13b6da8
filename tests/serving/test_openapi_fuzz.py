"""schemathesis against the served OpenAPI spec: whatever it sends, the server answers no
5xx, and what it answers is what the spec documents (status codes, content types, bodies).

The schemathesis command line runs against a live server on loopback (its pytest plugin's
fixture loader does not run on this pytest), with a fixed seed and a bounded example count.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from system0.security.access_control import Enforcer, Policy
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring, SigningKey
from system0.security.identity import TokenVerifier
from system0.serving.admin import AdminAuth
from system0.serving.app import create_app
from system0.serving.server import BackgroundServer
from system0.serving.wire import Limits

from .serving_fixtures import AUDIENCE, ISSUER, POLICY, pinned

ARTIFACTS = Path(
    os.environ.get("SYSTEM0_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
ST = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which(
    "schemathesis"
)


@pytest.mark.skipif(ST is None, reason="schemathesis is not installed (the dev extra)")
def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    ledger = AuditLedger.open(
        tmp_path / "audit", keyring=Keyring.generate(), signing_key=SigningKey.generate()
    )
    key = Ed25519PrivateKey.generate()
    auth = AdminAuth(
        TokenVerifier(key.public_key(), audience=AUDIENCE, issuer=ISSUER),
        Enforcer(Policy.from_dict(POLICY)),
        ledger,
    )
    # 413 is a rejection too: a tick over the documented maxItems is over the body limit first
    (tmp_path / "schemathesis.toml").write_text(
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", '
        '"422", "428", "429"]\n'
    )
    svc = pinned()
    app = create_app([svc], auth=auth, limits=Limits(max_body_bytes=32 * 1024))
    try:
        with BackgroundServer(app) as server:
            assert ST is not None
            run = subprocess.run(
                [
                    ST,
                    "run",
                    server.url + "/openapi.json",
                    "--checks",
                    "all",
                    "--max-examples",
                    "30",
                    "--seed",
                    os.environ.get("SYSTEM0_FUZZ_SEED", "1"),
                    "--no-color",
                    "--suppress-health-check",
                    "all",
                ],
                capture_output=True,
                text=True,
                timeout=500,
                cwd=tmp_path,
            )
    finally:
        svc.close()
        ledger.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "schemathesis.txt").write_text(run.stdout + run.stderr)
    failures = run.stdout.find("FAILURES")
    assert run.returncode == 0, run.stdout[failures : failures + 8000] + run.stderr[-2000:]
    # the fuzzer reached the model: generated GameStates that keep the contract were answered
    assert svc.engine.stats.completed > 1, svc.engine.stats
    assert "No issues found" in run.stdout or "passed" in run.stdout, run.stdout[-3000:]
