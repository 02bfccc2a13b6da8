"""KeyFileProvider: a generated 0600 secret file seals a keyring; nothing else opens it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from system0.errors import ConfigError, CryptoError
from system0.security.encryption import Keyring
from system0.security.key_file import KeyFileProvider


def test_a_keyring_sealed_by_a_key_file_opens_with_it(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    ring = Keyring.create(tmp_path / "ring", KeyFileProvider(key))
    envelope = ring.encrypt(b"secret", b"aad")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = Keyring.load(tmp_path / "ring", KeyFileProvider(key))
    assert again.decrypt(envelope, b"aad") == b"secret"
    assert str(key) not in (tmp_path / "ring").read_bytes().decode("latin-1")


def test_refusals(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    Keyring.create(tmp_path / "ring", KeyFileProvider(key))
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        KeyFileProvider(key).create_master_key()
    os.chmod(key, 0o644)
    with pytest.raises(CryptoError, match="chmod 600"):
        Keyring.load(tmp_path / "ring", KeyFileProvider(key))
    os.chmod(key, 0o600)
    other = tmp_path / "other.key"
    other.write_text("00" * 32 + "\n")
    os.chmod(other, 0o600)
    with pytest.raises(CryptoError):
        Keyring.load(tmp_path / "ring", KeyFileProvider(other))  # another secret
    other.write_text("not hex\n")
    with pytest.raises(CryptoError, match="damaged"):
        Keyring.load(tmp_path / "ring", KeyFileProvider(other))
    key.unlink()
    with pytest.raises(CryptoError, match="is missing"):
        Keyring.load(tmp_path / "ring", KeyFileProvider(key))
    assert not key.exists()
