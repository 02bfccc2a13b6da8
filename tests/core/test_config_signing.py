"""Ed25519 detached signatures over the resolved config; refusal when trust is configured."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from system0.core.config import check_signature, load_from_yaml, sign_file, signing, verify_file
from system0.errors import ConfigError

CONFIG = "schema_version: 2\ninference:\n  max_batch: ${env:S0_SIGN_BATCH,64}\n"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return signing.generate_keypair(tmp_path / "signer")


@pytest.fixture
def signed(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    path = tmp_path / "system0.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    sign_file(path, keys[0], env={})
    return path


def test_keygen_writes_a_private_key_only_the_owner_can_read(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert os.stat(private).st_mode & 0o077 == 0
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        signing.generate_keypair(private)


def test_sign_then_verify_round_trip(signed: Path, keys: tuple[Path, Path]) -> None:
    sig = json.loads(signing.signature_path(signed).read_text())
    config = load_from_yaml(signed, env={}, trusted_keys=[keys[1]])
    assert sig["format"] == "system0-config-signature" and sig["version"] == 1
    assert sig["algorithm"] == "ed25519"
    assert sig["content_hash"] == config.content_hash
    assert sig["key_id"] == signing.key_id(signing.load_public_key(keys[1]))
    assert len(base64.b64decode(sig["signature"])) == 64
    again, key = verify_file(signed, trusted_keys=[keys[1]], env={})
    assert again == config and key == sig["key_id"]


def test_the_signature_covers_the_canonical_bytes(signed: Path, keys: tuple[Path, Path]) -> None:
    # Checked with the cryptography package directly, following the documented format.
    sig = json.loads(signing.signature_path(signed).read_text())
    public = signing.load_public_key(keys[1])
    config = load_from_yaml(signed, env={})
    public.verify(base64.b64decode(sig["signature"]), signing.DOMAIN + config.canonical_json())


def test_a_tampered_signature_is_refused(signed: Path, keys: tuple[Path, Path]) -> None:
    sig_path = signing.signature_path(signed)
    doc = json.loads(sig_path.read_text())
    raw = bytearray(base64.b64decode(doc["signature"]))
    raw[10] ^= 0x01
    doc["signature"] = base64.b64encode(bytes(raw)).decode()
    sig_path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="does not verify: the signature file was tampered"):
        load_from_yaml(signed, env={}, trusted_keys=[keys[1]])


def test_a_changed_file_is_refused_with_both_hashes(signed: Path, keys: tuple[Path, Path]) -> None:
    signed.write_text(CONFIG.replace("64", "65"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_from_yaml(signed, env={}, trusted_keys=[keys[1]])
    msg = str(info.value)
    assert "content changed since it was signed" in msg
    assert msg.count("sha256:") == 2


def test_a_different_environment_is_a_content_change(signed: Path, keys: tuple[Path, Path]) -> None:
    load_from_yaml(signed, env={"S0_SIGN_BATCH": "64"}, trusted_keys=[keys[1]])  # same value
    with pytest.raises(ConfigError, match="an environment variable it reads differs"):
        load_from_yaml(signed, env={"S0_SIGN_BATCH": "8"}, trusted_keys=[keys[1]])


def test_a_signature_by_an_untrusted_key_is_refused(signed: Path, tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ConfigError) as info:
        load_from_yaml(signed, env={}, trusted_keys=[other])
    msg = str(info.value)
    assert "which is not trusted" in msg and signing.key_id(other) in msg


def test_unsigned_is_refused_only_when_trust_is_configured(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.delenv(signing.TRUSTED_KEYS_ENV, raising=False)
    assert load_from_yaml(path, env={}).inference.max_batch == 64
    with pytest.raises(
        ConfigError, match=r"unsigned: no signature file .*plain.yaml.sig; 1 trusted"
    ):
        load_from_yaml(path, env={}, trusted_keys=[keys[1]])
    with pytest.raises(ConfigError, match="a signature is required but no trusted keys"):
        load_from_yaml(path, env={}, require_signature=True)
    # Trust from the environment: a directory of public keys.
    keydir = tmp_path / "trusted"
    keydir.mkdir()
    (keydir / "ops.pub").write_bytes(keys[1].read_bytes())
    monkeypatch.setenv(signing.TRUSTED_KEYS_ENV, str(keydir))
    with pytest.raises(ConfigError, match="unsigned"):
        load_from_yaml(path, env={})
    sign_file(path, keys[0], env={})
    assert load_from_yaml(path, env={}).inference.max_batch == 64


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "signature file is not JSON"),
        ('{"format": "other"}', "not a system0 config signature"),
        (
            '{"format": "system0-config-signature", "version": 2, "algorithm": "ed25519"}',
            "unsupported signature version 2",
        ),
        (
            '{"format": "system0-config-signature", "version": 1, "algorithm": "ed25519"}',
            "malformed signature file",
        ),
    ],
)
def test_malformed_signature_files(
    signed: Path, keys: tuple[Path, Path], content: str, expected: str
) -> None:
    signing.signature_path(signed).write_text(content)
    with pytest.raises(ConfigError, match=expected):
        load_from_yaml(signed, env={}, trusted_keys=[keys[1]])


def test_a_wrong_key_file_is_named(tmp_path: Path, signed: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("hello")
    with pytest.raises(ConfigError, match=r"bad.pub: not a PEM public key"):
        load_from_yaml(signed, env={}, trusted_keys=[bad])
    with pytest.raises(ConfigError, match=r"bad.pub: not an unencrypted PEM private key"):
        sign_file(signed, bad, env={})
    config = load_from_yaml(signed, env={})
    with pytest.raises(ConfigError, match="no trusted keys are configured"):
        check_signature(signed, config, {})
