"""No deploy without a pass, through the server: a registry deployment behind the HTTP admin
route refuses (409, naming the check) a version without a passing signed gate report, and
deploys the version that ``system0 gate`` passed, its report beside its weights."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_run import run_cli

from system0.core.config import AIConfig
from system0.core.config.signing import generate_keypair
from system0.game.policy import policy_weights_path
from system0.serving.app import create_app
from system0.serving.deployment import Deployment
from system0.serving.engine_io import state_engine
from system0.serving.registry import ModelRegistry
from system0.serving.server import BackgroundServer
from system0.testing import GoldenSet, version_gate_check
from system0.testing.deploy_check import GATE_REPORT

from .conftest import state
from .serving_fixtures import Admin


@pytest.fixture
def gated_registry(tmp_path: Path) -> Iterator[tuple[ModelRegistry, Path]]:
    """A registry holding the shipped policy as v1, gated by ``system0 gate`` (its report in
    the version's folder), and the gate's public key."""
    registry = ModelRegistry(tmp_path / "registry")
    v1 = registry.publish("policy", policy_weights_path())
    private, public = generate_keypair(tmp_path / "gate.key")
    done = run_cli(
        tmp_path,
        *("gate", str(v1.path), "--signing-key", str(private)),
        *("--out", str(v1.path / GATE_REPORT.parent), "--no-progress"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield registry, public


def test_the_server_deploys_only_a_gated_version(
    gated_registry: tuple[ModelRegistry, Path], admin: Admin, tmp_path: Path
) -> None:
    registry, public = gated_registry
    model = registry.get("policy", "v1").load()
    dep = Deployment(
        "policy",
        registry,
        engine_factory=state_engine,
        golden_check=GoldenSet.record_states(model, [state(), state(health=300.0)]),
        gate_check=version_gate_check(public),
        audit=admin.ledger,
    )
    # v2: the same weights under another config, never gated
    v2 = registry.publish("policy", policy_weights_path(), config=AIConfig()).path
    try:
        server = BackgroundServer(create_app([dep], auth=admin.auth)).start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                token = {"authorization": f"Bearer {admin.token('alice')}"}

                def deploy(version: str) -> httpx.Response:
                    return client.post(
                        "/v1/models/policy/deploy", headers=token, json={"version": version}
                    )

                r = deploy("v1")
                assert r.status_code == 200, r.text
                r = client.post("/v1/models/policy/promote", headers=token)
                assert r.status_code == 200 and r.json()["model"]["active"] == "v1"
                r = deploy("v2")
                assert r.status_code == 409 and r.json()["message"].startswith("no report")
                # v1's report does not pass for v2: it judged another config
                (v2 / GATE_REPORT).parent.mkdir()
                shutil.copy(registry.get("policy", "v1").path / GATE_REPORT, v2 / GATE_REPORT)
                r = deploy("v2")
                assert r.status_code == 409
                assert r.json()["message"].startswith("report for another config")
                # a report changed after signing is refused before anything in it is read
                doc = json.loads((v2 / GATE_REPORT).read_text())
                doc["body"]["config_hash"] = AIConfig().content_hash
                (v2 / GATE_REPORT).write_text(json.dumps(doc))
                r = deploy("v2")
                assert r.status_code == 409
                assert r.json()["message"].startswith("signature invalid")
                # nothing was switched: v1 still answers
                r = client.post("/v1/models/policy/infer", content=json.dumps(state()).encode())
                assert r.status_code == 200 and r.json()["version"] == "v1", r.text
        finally:
            server.stop()
    finally:
        dep.close()
    refused = [e for e in admin.entries() if e.get("event") == "deploy_refused"]
    assert len(refused) == 3, admin.entries()


def test_system0_serve_from_a_registry_refuses_an_ungated_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    registry.publish("policy", policy_weights_path())
    _, public = generate_keypair(tmp_path / "gate.key")
    done = run_cli(tmp_path, "serve", "--registry", "registry", "--port", "0")
    assert done.returncode == 2 and "--registry needs --gate-key" in done.stderr
    done = run_cli(
        tmp_path, "serve", "--registry", "registry", "--gate-key", str(public), "--port", "0"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "GateRefused: no report" in done.stderr and "gate-report.json" in done.stderr
