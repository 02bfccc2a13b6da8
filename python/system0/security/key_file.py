"""``KeyFileProvider``: a keyring's master key from a generated secret file (mode 0600).

For a machine where no passphrase or secret store is set up (a first demo run), the secret
is 32 random bytes written, hex encoded, to a file only its owner can read; the master key
is HKDF-SHA256(secret, random salt), as :class:`~system0.security.key_provider.EnvKeyProvider`
derives it. The keyring stores the salt, never the file's path: the path is given again on
every load, so a moved folder keeps opening. The secret protects the keyring exactly as well
as the file's permissions protect the secret: whoever can read the file can read the ledger.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from system0.errors import ConfigError, CryptoError, from_os_error
from system0.security.key_provider import MASTER_KEY_BYTES, decode_params, encode_params

__all__ = ["KeyFileProvider"]

_SECRET_BYTES = 32


class KeyFileProvider:
    """Master key = HKDF-SHA256(the secret in ``path``, salt); see the module doc.

    ``create_master_key`` writes a new secret file (refusing to overwrite one); ``master_key``
    reads it, refusing a file that others may read or write.
    """

    name = "keyfile"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"KeyFileProvider(path={os.fspath(self.path)!r})"

    def _write_secret(self) -> bytes:
        secret = os.urandom(_SECRET_BYTES)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigError(
                f"{self.path} already exists; refusing to overwrite a key file (the keyring "
                "sealed by it could never be opened again)"
            ) from None
        except OSError as e:
            raise from_os_error(e, f"create key file {self.path}") from None
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secret.hex() + "\n")
        except OSError as e:  # a full disk: the partial file must not pass for a key file
            self.path.unlink(missing_ok=True)
            raise from_os_error(e, f"write key file {self.path}") from None
        return secret

    def _read_secret(self) -> bytes:
        try:
            st = self.path.stat()
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise CryptoError(
                f"key file {self.path} is missing; the keyring sealed by it cannot be opened "
                "without it (restore it from a backup)"
            ) from None
        except UnicodeDecodeError as e:
            raise CryptoError(f"key file {self.path} is not a hex secret: {e}") from None
        except OSError as e:  # a permission or a device error says nothing about the key
            raise from_os_error(e, f"read key file {self.path}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CryptoError(
                f"key file {self.path} is readable or writable by others (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); run 'chmod 600 {self.path}'"
            )
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
        if len(secret) != _SECRET_BYTES:
            raise CryptoError(
                f"key file {self.path} must hold {_SECRET_BYTES} bytes as hex; it is damaged"
            )
        return secret

    @staticmethod
    def _derive(secret: bytes, salt: bytes) -> bytearray:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=MASTER_KEY_BYTES,
            salt=salt,
            info=b"system0/keyring/master/keyfile/v1",
        )
        return bytearray(hkdf.derive(secret))

    def create_master_key(self) -> tuple[bytearray, bytes]:
        salt = os.urandom(16)
        return self._derive(self._write_secret(), salt), encode_params(self.name, salt=salt.hex())

    def master_key(self, params: bytes) -> bytearray:
        doc = decode_params(params, self.name)
        try:
            salt = bytes.fromhex(doc["salt"])
        except (KeyError, ValueError, TypeError) as e:
            raise CryptoError(f"keyfile provider parameters are malformed: {e}") from None
        return self._derive(self._read_secret(), salt)
