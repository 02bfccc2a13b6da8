"""End to end, as a user runs it: ``system0 serve`` in its own process with the flight
recorder on, traffic over HTTP, ``system0 status`` / ``rollback`` / ``drain`` against it,
then a graceful stop and ``system0 replay`` of the served run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from cli_run import run_cli
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from system0.security.identity import TokenIssuer

from .serving_fixtures import AUDIENCE, ISSUER, POLICY, body, states


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise AssertionError(f"system0 serve exited: {proc.communicate()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("system0 serve did not become ready")


def test_serve_status_admin_and_replay_of_the_served_run(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "issuer.pub"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    policy = tmp_path / "rbac.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k != "SYSTEM0_RUN_PASSPHRASE"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "system0.cli", "serve", "--port", str(port), "--record",
         "complete", "--record-out", str(runs), "--admin-policy", str(policy), "--admin-key",
         str(pem), "--audit", str(tmp_path / "admin-audit")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        _wait_ready(url, proc)
        tick = states(6)
        r = httpx.post(url + "/v1/models/policy/infer", content=body(tick), timeout=10)
        assert r.status_code == 200, r.text
        for s in states(4, seed=11):
            assert httpx.post(url + "/v1/models/policy/infer", content=body(s)).status_code == 200

        table = run_cli(tmp_path, "status", "--server", url)
        assert table.returncode == 0, table.stderr
        assert table.stdout.startswith("MODEL") and "policy" in table.stdout
        assert "active" in table.stdout  # the version line
        doc = json.loads(run_cli(tmp_path, "status", "--server", url, "--json").stdout)
        version = doc["models"][0]["active"]
        assert doc["stats"]["models"]["policy"]["statuses"]["200"] == 5

        token = TokenIssuer(key, ISSUER).issue("alice", audience=AUDIENCE)
        no = run_cli(tmp_path, "rollback", "policy", "--server", url)
        assert no.returncode == 1 and "HTTP 401" in no.stderr
        refused = run_cli(tmp_path, "rollback", "policy", "--server", url, "--token", token)
        assert refused.returncode == 1 and "no previous version" in refused.stderr
        ok = run_cli(tmp_path, "deploy", "policy", version, "--server", url, "--token", token)
        assert ok.returncode == 0 and f"active {version}" in ok.stdout, ok.stderr
        down = run_cli(tmp_path, "status", "--server", "http://127.0.0.1:1")
        assert down.returncode == 2 and "cannot reach the server" in down.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (run,) = list(runs.iterdir())
    assert f"recorded run {run}" in out
    replay = run_cli(tmp_path, "replay", str(run))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replayed 11 decisions" in replay.stdout  # the warm-up, the tick and 4 singles
    assert "11 bit-identical" in replay.stdout
