"""Keyring operations: rotation, disable, crypto-shredding, nonce budget, providers, secrecy."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest

from system0.errors import CryptoError, IntegrityError
from system0.security.encryption import (
    EnvKeyProvider,
    KeyProvider,
    Keyring,
    PassphraseKeyProvider,
)

FAST = {"iterations": 1, "lanes": 1, "memory_cost_kib": 8192}  # keep tests quick


def test_rotation_never_reencrypts_and_keeps_old_data_readable() -> None:
    ring = Keyring.generate()
    first = ring.primary_key_id
    old = ring.encrypt(b"old", b"a")
    new_id = ring.rotate()
    assert ring.primary_key_id == new_id != first
    new = ring.encrypt(b"new", b"a")
    assert Keyring.envelope_key_id(old) == first
    assert Keyring.envelope_key_id(new) == new_id
    assert ring.decrypt(old, b"a") == b"old"
    assert ring.decrypt(new, b"a") == b"new"
    added = ring.add()
    ring.promote(added)
    assert Keyring.envelope_key_id(ring.encrypt(b"x")) == added
    assert ring.decrypt(old, b"a") == b"old"


def test_disable_suspends_and_enable_restores() -> None:
    ring = Keyring.generate()
    k1 = ring.primary_key_id
    assert k1 is not None
    env = ring.encrypt(b"data")
    with pytest.raises(CryptoError, match="primary"):
        ring.disable(k1)
    ring.rotate()
    ring.disable(k1)
    with pytest.raises(CryptoError, match="disabled"):
        ring.decrypt(env)
    with pytest.raises(CryptoError, match="only an active key"):
        ring.promote(k1)
    ring.enable(k1)
    assert ring.decrypt(env) == b"data"


def test_destroy_is_crypto_shredding_in_memory_and_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "keyring.s0k"
    provider = PassphraseKeyProvider("correct horse battery", **FAST)
    ring = Keyring.create(path, provider)
    doomed = ring.primary_key_id
    assert doomed is not None
    secret = ring.encrypt(b"personal data", b"user:42")
    keep = ring.rotate()
    kept = ring.encrypt(b"other data")
    with pytest.raises(CryptoError, match="primary"):
        ring.destroy(keep)
    ring.destroy(doomed)
    with pytest.raises(CryptoError, match="destroyed"):
        ring.decrypt(secret, b"user:42")
    with pytest.raises(CryptoError, match="cannot be re-enabled"):
        ring.enable(doomed)
    # The file no longer holds the key either: a fresh load cannot read the data...
    again = Keyring.load(path, provider)
    with pytest.raises(CryptoError, match="destroyed"):
        again.decrypt(secret, b"user:42")
    assert again.decrypt(kept) == b"other data"
    statuses = {k.key_id: k.status for k in again.key_info()}
    assert statuses == {doomed: "destroyed", keep: "active"}
    # ...and neither can a keyring that re-adds every surviving key under the same ids.
    forged = Keyring()
    forged.add(os.urandom(32))
    with pytest.raises(CryptoError):
        forged.decrypt(secret, b"user:42")


def test_message_limit_refuses_without_auto_rotation() -> None:
    ring = Keyring.generate(message_limit=5, rotate_at=5, auto_rotate=False)
    for _ in range(5):
        ring.encrypt(b"x")
    with pytest.raises(CryptoError, match="limit"):
        ring.encrypt(b"x")
    assert ring.key_info()[0].messages == 5


def test_auto_rotation_happens_before_the_limit() -> None:
    ring = Keyring.generate(message_limit=8)  # rotate_at defaults to half: 4
    ids = [Keyring.envelope_key_id(ring.encrypt(b"x")) for _ in range(10)]
    assert ids == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert all(k.messages <= 4 for k in ring.key_info())


def test_message_budget_survives_restart_of_a_persisted_keyring(tmp_path: Path) -> None:
    path = tmp_path / "k.s0k"
    provider = PassphraseKeyProvider("long enough passphrase", **FAST)
    ring = Keyring.create(path, provider, message_limit=8, rotate_at=8, auto_rotate=False)
    for _ in range(5):
        ring.encrypt(b"x")
    again = Keyring.load(path, provider)  # a restart: counts come back from the file
    for _ in range(3):
        again.encrypt(b"x")
    with pytest.raises(CryptoError, match="limit"):
        again.encrypt(b"x")


def test_concurrent_encryption_counts_every_message() -> None:
    ring = Keyring.generate(message_limit=4000, rotate_at=4000, auto_rotate=False)

    def work() -> None:
        for _ in range(1000):
            ring.encrypt(b"y")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(CryptoError, match="limit"):
        ring.encrypt(b"y")


def test_wrong_passphrase_and_tampered_file(tmp_path: Path) -> None:
    path = tmp_path / "k.s0k"
    Keyring.create(path, PassphraseKeyProvider("the right passphrase", **FAST))
    with pytest.raises(CryptoError, match="wrong passphrase"):
        Keyring.load(path, PassphraseKeyProvider("the wrong passphrase", **FAST))
    with pytest.raises(CryptoError, match="already exists"):
        Keyring.create(path, PassphraseKeyProvider("the right passphrase", **FAST))
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="altered"):
        Keyring.load(path, PassphraseKeyProvider("the right passphrase", **FAST))


def test_provider_mismatch_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S0_TEST_SECRET", EnvKeyProvider.generate_secret())
    path = tmp_path / "k.s0k"
    ring = Keyring.create(path, EnvKeyProvider("S0_TEST_SECRET"))
    env = ring.encrypt(b"via env")
    assert Keyring.load(path, EnvKeyProvider("S0_TEST_SECRET")).decrypt(env) == b"via env"
    with pytest.raises(CryptoError, match="'env' key provider"):
        Keyring.load(path, PassphraseKeyProvider("some passphrase", **FAST))
    monkeypatch.setenv("S0_TEST_SECRET", EnvKeyProvider.generate_secret())
    with pytest.raises(CryptoError, match="does not open"):
        Keyring.load(path, EnvKeyProvider("S0_TEST_SECRET"))
    monkeypatch.setenv("S0_TEST_SECRET", "too short")
    with pytest.raises(CryptoError, match=">= 32 random bytes"):
        Keyring.load(path, EnvKeyProvider("S0_TEST_SECRET"))
    monkeypatch.delenv("S0_TEST_SECRET")
    with pytest.raises(CryptoError, match="is not set"):
        Keyring.load(path, EnvKeyProvider("S0_TEST_SECRET"))


def test_providers_satisfy_the_protocol() -> None:
    assert isinstance(PassphraseKeyProvider("a passphrase", **FAST), KeyProvider)
    assert isinstance(EnvKeyProvider(), KeyProvider)


def test_key_material_never_appears_in_repr_logs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    material = bytes.fromhex("5a" * 32)
    passphrase = "hunter2-is-not-a-good-passphrase"
    ring = Keyring()
    kid = ring.add(material)
    ring.promote(kid)
    ring.save(tmp_path / "k.s0k", PassphraseKeyProvider(passphrase, **FAST))
    texts = [repr(ring), str(ring), repr(ring.key_info()), repr(ring.keys())]
    texts.append(repr(PassphraseKeyProvider(passphrase, **FAST)))
    for bad in (lambda: ring.decrypt(b"\x01" + bytes(80)), lambda: ring.add(material)):
        with pytest.raises(Exception) as info:
            bad()
        texts.append(str(info.value))
        texts.append(repr(info.value))
    texts.append(caplog.text)
    forbidden = [material.hex(), material.decode("latin-1"), passphrase, repr(material)]
    for text in texts:
        for secret in forbidden:
            assert secret not in text
    stored = (tmp_path / "k.s0k").read_bytes()
    assert material not in stored
    assert passphrase.encode() not in stored


def test_bad_arguments_are_value_errors() -> None:
    ring = Keyring()
    with pytest.raises(ValueError, match="32 bytes"):
        ring.add(b"short")
    with pytest.raises(CryptoError, match="no primary key"):
        ring.encrypt(b"x")
    with pytest.raises(ValueError, match="message_limit"):
        Keyring(message_limit=2**32 + 1)
    with pytest.raises(ValueError, match="rotate_at"):
        Keyring(message_limit=10, rotate_at=11)


class WrappingKeyProvider:
    """A KMS-shaped provider: the master key is a data key wrapped by a key-encryption key
    that never leaves the "KMS" (here an AES-GCM key held by this object)."""

    name = "test-kms"

    def __init__(self, kek: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._kms = AESGCM(kek)

    def create_master_key(self) -> tuple[bytearray, bytes]:
        data_key = bytearray(os.urandom(32))
        nonce = os.urandom(12)
        wrapped = nonce + self._kms.encrypt(nonce, bytes(data_key), b"system0 keyring")
        return data_key, json.dumps({"provider": self.name, "wrapped": wrapped.hex()}).encode()

    def master_key(self, params: bytes) -> bytearray:
        wrapped = bytes.fromhex(json.loads(params)["wrapped"])
        return bytearray(self._kms.decrypt(wrapped[:12], wrapped[12:], b"system0 keyring"))


def test_a_kms_style_provider_plugs_in(tmp_path: Path) -> None:
    kek = os.urandom(32)
    provider = WrappingKeyProvider(kek)
    assert isinstance(provider, KeyProvider)
    ring = Keyring.create(tmp_path / "k.s0k", provider)
    env = ring.encrypt(b"kms protected")
    assert (
        Keyring.load(tmp_path / "k.s0k", WrappingKeyProvider(kek)).decrypt(env) == b"kms protected"
    )
    with pytest.raises(Exception):  # noqa: B017 - the "KMS" refuses to unwrap
        Keyring.load(tmp_path / "k.s0k", WrappingKeyProvider(os.urandom(32)))
