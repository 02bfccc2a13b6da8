"""TpmKeyProvider against a real software TPM (swtpm) that the test starts itself.

Skips, with the reason, when swtpm (apt: ``.ci/apt-tpm.sh``) or tpm2-pytss
(``pip install 'system0[tpm]'``, which builds against libtss2-dev) is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from system0.errors import CryptoError
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring, SigningKey

if shutil.which("swtpm") is None:
    pytest.skip(
        "swtpm is not installed (Debian: swtpm swtpm-tools, see .ci/apt-tpm.sh)",
        allow_module_level=True,
    )
pytest.importorskip(
    "tpm2_pytss",
    reason="tpm2-pytss is not installed: pip install 'system0[tpm]' (needs libtss2-dev, "
    "see .ci/apt-tpm.sh)",
)

from system0.security.tpm import TpmKeyProvider


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of TCP ports for swtpm")


def _start_swtpm(state: Path) -> tuple[subprocess.Popen[bytes], str]:
    state.mkdir(parents=True, exist_ok=True)
    port = _free_port_pair()
    proc = subprocess.Popen(
        [
            "swtpm",
            "socket",
            "--tpm2",
            "--tpmstate",
            f"dir={state}",
            "--server",
            f"type=tcp,port={port},bindaddr=127.0.0.1",
            "--ctrl",
            f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
            "--flags",
            "not-need-init,startup-clear",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.skip(f"swtpm could not start: {err.strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"swtpm:host=127.0.0.1,port={port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.skip("swtpm did not open its port within 10 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def tpm(tmp_path: Path) -> Iterator[str]:
    proc, tcti = _start_swtpm(tmp_path / "tpm-a")
    try:
        yield tcti
    finally:
        _stop(proc)


def test_master_key_sealed_to_the_tpm_opens_the_keyring(tpm: str, tmp_path: Path) -> None:
    provider = TpmKeyProvider(tpm)
    path = tmp_path / "ring.s0k"
    ring = Keyring.create(path, provider)
    env = ring.encrypt(b"sealed by hardware", b"ctx")
    again = Keyring.load(path, TpmKeyProvider(tpm))
    assert again.decrypt(env, b"ctx") == b"sealed by hardware"
    params = Keyring.read_provider_params(path)
    assert b'"provider": "tpm"' in params and b"sealed" in params


def test_another_tpm_cannot_unseal(tpm: str, tmp_path: Path) -> None:
    path = tmp_path / "ring.s0k"
    Keyring.create(path, TpmKeyProvider(tpm))
    other, other_tcti = _start_swtpm(tmp_path / "tpm-b")
    try:
        with pytest.raises(CryptoError, match="TPM refused"):
            Keyring.load(path, TpmKeyProvider(other_tcti))
    finally:
        _stop(other)


def test_identity_key_sealed_to_the_tpm_signs_checkpoints(tpm: str, tmp_path: Path) -> None:
    provider = TpmKeyProvider(tpm)
    identity = SigningKey.generate()
    blob = provider.seal_signing_key(identity)
    assert identity.secret_bytes() not in blob
    restored = provider.load_signing_key(blob)
    assert restored.public_key == identity.public_key
    ledger = AuditLedger.open(tmp_path / "l", keyring=Keyring.generate(), signing_key=restored)
    ledger.append(b"entry")
    assert ledger.checkpoint().verify(identity.public_key)


def test_unreachable_tpm_and_bad_blob_raise_crypto_errors(tpm: str) -> None:
    provider = TpmKeyProvider(tpm)
    with pytest.raises(CryptoError, match="malformed"):
        provider.unseal_secret(b"not json")
    with pytest.raises(CryptoError, match="1 to 128 bytes"):
        provider.seal_secret(b"")
    port = _free_port_pair()
    with pytest.raises(CryptoError, match="TPM"):
        TpmKeyProvider(f"swtpm:host=127.0.0.1,port={port}").seal_secret(b"x")
