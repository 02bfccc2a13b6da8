"""Encryption at rest and in transit: :class:`Keyring` and the system0 envelope.

The envelope is AES-256-GCM from ``ring`` with a key commitment (see ``rust/crypto``)::

    format 0x01 | key id (4, big-endian) | nonce (12) | commitment (32) | ciphertext | tag (16)

* **Key commitment.** Each key K yields, by HKDF-Expand-SHA256, an AES key and a 32-byte
  commitment; the commitment travels in the envelope and is checked before decryption, so an
  envelope opens under exactly one key (plain GCM allows ciphertexts that open under two).
* **Nonces.** 96 random bits from the OS CSPRNG (pooled per thread, discarded across
  ``fork``). NIST SP 800-38D caps a key at 2**32 such messages; every key counts its
  envelopes, a keyring rotates automatically at ``rotate_at`` (default 2**31) and never seals
  past ``message_limit`` (default and maximum 2**32). A persisted keyring writes each block of
  the count to its file before using it, so restarts only over-count.
* **Rotation** (:meth:`Keyring.rotate`, or :meth:`~Keyring.add` then
  :meth:`~Keyring.promote`) never re-encrypts and never makes old envelopes unreadable.
  :meth:`~Keyring.disable` suspends a key, :meth:`~Keyring.destroy` wipes it from memory and
  from the keyring file: crypto-shredding, its envelopes can no longer be read by anyone.
  (Copies of an older keyring file, e.g. in backups, still hold the key.)
* **Storage.** :meth:`Keyring.save` seals the keyring under a master key from a
  :class:`~system0.security.key_provider.KeyProvider`. Key material lives in zeroized Rust
  memory and never appears in a repr, a log or an error message.
"""

from __future__ import annotations

import os
from pathlib import Path

# KeyInfo (the public facts about one key) is a frozen Rust class, documented in _core.pyi.
from system0._core import ENVELOPE_OVERHEAD, KeyInfo, SigningKey
from system0._core import Keyring as _CoreKeyring
from system0.errors import CryptoError
from system0.security.key_provider import (
    EnvKeyProvider,
    KeyProvider,
    PassphraseKeyProvider,
    wipe,
)

MAX_MESSAGES_PER_KEY = 2**32


class Keyring(_CoreKeyring):
    """Numbered AES-256 keys: the primary encrypts, every active key decrypts.

    ``Keyring()`` is empty; :meth:`generate` gives one with a fresh primary key;
    :meth:`create` and :meth:`load` bind one to a file sealed by a ``KeyProvider``. Once
    bound, every change (add, promote, disable, destroy, rotation) is written at once.

    ``encrypt(data, aad=b"")`` returns an envelope; ``decrypt(envelope, aad=b"")`` returns the
    plaintext or raises :class:`~system0.errors.CryptoError` (wrong or unknown key, disabled or
    destroyed key, tampering, different ``aad``) and never returns partial plaintext.
    """

    @classmethod
    def generate(
        cls,
        *,
        message_limit: int = MAX_MESSAGES_PER_KEY,
        rotate_at: int | None = None,
        auto_rotate: bool = True,
    ) -> Keyring:
        """An in-memory keyring holding one fresh primary key."""
        ring = cls(message_limit=message_limit, rotate_at=rotate_at, auto_rotate=auto_rotate)
        ring.rotate()
        return ring

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        provider: KeyProvider,
        *,
        message_limit: int = MAX_MESSAGES_PER_KEY,
        rotate_at: int | None = None,
        auto_rotate: bool = True,
    ) -> Keyring:
        """A new keyring with one primary key, stored at ``path`` (which must not exist)."""
        if Path(path).exists():
            raise CryptoError(
                f"{os.fspath(path)} already exists; load it with Keyring.load, or choose "
                "another path"
            )
        ring = cls.generate(
            message_limit=message_limit, rotate_at=rotate_at, auto_rotate=auto_rotate
        )
        ring.save(path, provider)
        return ring

    @classmethod
    def load(cls, path: str | os.PathLike[str], provider: KeyProvider) -> Keyring:
        """Open the keyring stored at ``path`` with the provider that sealed it."""
        params = bytes(_CoreKeyring.read_provider_params(Path(path)))
        master = provider.master_key(params)
        try:
            ring = cls()
            ring._load(Path(path), master)
        finally:
            wipe(master)
        return ring

    def save(self, path: str | os.PathLike[str], provider: KeyProvider) -> None:
        """Seal this keyring under a new master key from ``provider`` and bind it to ``path``."""
        master, params = provider.create_master_key()
        try:
            self._save(Path(path), master, params)
        finally:
            wipe(master)

    def key_info(self) -> list[KeyInfo]:
        """Every key's id, status, primary flag, creation time and message count."""
        return self.keys()


def envelope_key_id(envelope: bytes) -> int:
    """The key id named in an envelope's header (nothing is decrypted)."""
    return _CoreKeyring.envelope_key_id(envelope)


__all__ = [
    "ENVELOPE_OVERHEAD",
    "MAX_MESSAGES_PER_KEY",
    "EnvKeyProvider",
    "KeyInfo",
    "KeyProvider",
    "Keyring",
    "PassphraseKeyProvider",
    "SigningKey",
    "envelope_key_id",
]
