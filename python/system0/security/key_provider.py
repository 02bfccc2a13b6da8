"""Where a keyring's master key comes from: the ``KeyProvider`` protocol and its defaults.

A keyring file is sealed under a 32-byte master key. A provider creates that key once, hands
back public *parameters* (salt, cost, which variable, a TPM-sealed blob, a KMS-wrapped key)
that are stored in the clear, authenticated, at the head of the keyring file, and recreates
the key from those parameters on every load. Providers return the key in a ``bytearray`` so
the keyring can wipe it the moment the Rust core has copied it.

Built in: :class:`PassphraseKeyProvider` (Argon2id, memory-hard, RFC 9106) and
:class:`EnvKeyProvider` (a high-entropy secret in an environment variable, stretched with
HKDF-SHA256). ``system0.security.tpm.TpmKeyProvider`` seals the key to a TPM 2.0. A KMS
provider implements the same two methods: ``create_master_key`` asks the KMS for a data key
and returns it with the wrapped copy as parameters; ``master_key`` asks the KMS to unwrap.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from system0.errors import ConfigError, CryptoError

MASTER_KEY_BYTES = 32


@runtime_checkable
class KeyProvider(Protocol):
    """Creates and recovers the master key that seals a keyring file."""

    @property
    def name(self) -> str:
        """Short identifier stored in the keyring parameters (``"passphrase"``, ``"env"``...)."""
        ...

    def create_master_key(self) -> tuple[bytearray, bytes]:
        """A fresh 32-byte master key and the public parameters needed to recreate it."""
        ...

    def master_key(self, params: bytes) -> bytearray:
        """Recreate the master key from the parameters ``create_master_key`` returned."""
        ...


def wipe(buf: bytearray) -> None:
    """Overwrite a secret held in a bytearray (best effort: Python may hold other copies)."""
    buf[:] = bytes(len(buf))


def encode_params(provider: str, **fields: Any) -> bytes:
    return json.dumps({"provider": provider, **fields}, sort_keys=True).encode()


def decode_params(params: bytes, provider: str) -> dict[str, Any]:
    try:
        doc = json.loads(params)
    except ValueError as e:
        raise CryptoError(f"keyring provider parameters are not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("provider") != provider:
        found = doc.get("provider") if isinstance(doc, dict) else None
        raise CryptoError(
            f"this keyring was sealed by the {found!r} key provider, not {provider!r}; "
            "open it with the provider that created it"
        )
    return doc


class PassphraseKeyProvider:
    """Master key = Argon2id(passphrase, random salt), RFC 9106's second recommended setting
    by default (t=3, p=4, 64 MiB). The cost is stored with the salt, so a keyring keeps
    opening after the defaults change."""

    name = "passphrase"

    def __init__(
        self,
        passphrase: str | bytes,
        *,
        iterations: int = 3,
        lanes: int = 4,
        memory_cost_kib: int = 64 * 1024,
    ) -> None:
        secret = passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)
        if len(secret) < 8:
            raise ConfigError("a keyring passphrase needs at least 8 characters")
        if memory_cost_kib < 8 * 1024 or iterations < 1 or lanes < 1:
            raise ConfigError(
                "Argon2id needs memory_cost_kib >= 8192, iterations >= 1 and lanes >= 1 "
                f"(got {memory_cost_kib}, {iterations}, {lanes})"
            )
        self._secret = bytearray(secret)
        self._cost = {"t": iterations, "p": lanes, "m": memory_cost_kib}

    def __repr__(self) -> str:
        return f"PassphraseKeyProvider(argon2id t={self._cost['t']} m={self._cost['m']}KiB)"

    def _derive(self, salt: bytes, t: int, p: int, m: int) -> bytearray:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        kdf = Argon2id(salt=salt, length=MASTER_KEY_BYTES, iterations=t, lanes=p, memory_cost=m)
        return bytearray(kdf.derive(bytes(self._secret)))

    def create_master_key(self) -> tuple[bytearray, bytes]:
        salt = os.urandom(16)
        key = self._derive(salt, **self._cost)
        return key, encode_params(self.name, kdf="argon2id", salt=salt.hex(), **self._cost)

    def master_key(self, params: bytes) -> bytearray:
        doc = decode_params(params, self.name)
        try:
            return self._derive(
                bytes.fromhex(doc["salt"]), int(doc["t"]), int(doc["p"]), int(doc["m"])
            )
        except (KeyError, ValueError, TypeError) as e:
            raise CryptoError(f"passphrase provider parameters are malformed: {e}") from None


class EnvKeyProvider:
    """Master key = HKDF-SHA256(secret from an environment variable, random salt).

    The variable holds at least 32 random bytes, base64 or hex encoded (make one with
    :meth:`generate_secret`). Only the variable's name and the salt are stored.
    """

    name = "env"

    def __init__(self, variable: str = "SYSTEM0_MASTER_KEY") -> None:
        self.variable = variable

    def __repr__(self) -> str:
        return f"EnvKeyProvider(variable={self.variable!r})"

    @staticmethod
    def generate_secret() -> str:
        """A fresh secret suitable for the environment variable (base64 of 32 random bytes)."""
        return base64.b64encode(os.urandom(32)).decode()

    def _secret(self, variable: str) -> bytes:
        raw = os.environ.get(variable)
        if not raw:
            raise CryptoError(
                f"environment variable {variable} is not set; it must hold the keyring secret "
                "(base64 or hex of >= 32 random bytes)"
            )
        raw = raw.strip()
        secret: bytes | None = None
        try:
            secret = bytes.fromhex(raw)
        except ValueError:
            try:
                secret = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                secret = None
        if secret is None or len(secret) < 32:
            raise CryptoError(
                f"environment variable {variable} must hold >= 32 random bytes as base64 or hex; "
                "generate one with EnvKeyProvider.generate_secret()"
            )
        return secret

    def _derive(self, variable: str, salt: bytes) -> bytearray:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=MASTER_KEY_BYTES,
            salt=salt,
            info=b"system0/keyring/master/v1",
        )
        return bytearray(hkdf.derive(self._secret(variable)))

    def create_master_key(self) -> tuple[bytearray, bytes]:
        salt = os.urandom(16)
        return self._derive(self.variable, salt), encode_params(
            self.name, variable=self.variable, salt=salt.hex()
        )

    def master_key(self, params: bytes) -> bytearray:
        doc = decode_params(params, self.name)
        try:
            return self._derive(str(doc["variable"]), bytes.fromhex(doc["salt"]))
        except (KeyError, ValueError) as e:
            raise CryptoError(f"env provider parameters are malformed: {e}") from None


__all__ = [
    "EnvKeyProvider",
    "KeyProvider",
    "PassphraseKeyProvider",
    "decode_params",
    "encode_params",
    "wipe",
]
