"""``BlobStore``: the stored bytes of every dataset, on every tier, and the rules that guard them.

One object says how a blob is written (announced to the catalog first, so a crashed writer's
blob is known and ``gc`` can reclaim it), read (its length and SHA-256 checked against the
catalog before anything trusts it), sealed and opened (AEAD under the keyring, bound to its
dataset by associated data) and accounted for (one audit entry per access). The router,
compaction and verification all go through it, so these rules are written once and none of
them reaches into another's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from system0.data.storage.policy import Tier
from system0.data.storage.segments import Backend, KeyringLike, sha256
from system0.data.storage.versions import Catalog, Placement
from system0.errors import ConfigError, CryptoError, Error, IntegrityError
from system0.security.audit_sink import AuditSink

__all__ = ["BlobStore", "dataset_aad"]


def dataset_aad(dataset: str) -> bytes:
    """Associated data binding every encrypted blob to its dataset.

    Not to the blob's id: ciphertexts are random (fresh nonces), so a blob is named by the
    hash of its stored bytes, known only after encryption; the catalog's checksum of those
    bytes already ties each blob to its place.
    """
    return f"system0.storage:{dataset}".encode()


class BlobStore:
    """Put, fetch-and-verify, seal and open the blobs of a storage's datasets; audit each use.

    ``backends`` is the storage's own mapping of tier to backend (shared, not copied: a tier
    configured later is seen here too).
    """

    def __init__(
        self,
        catalog: Catalog,
        backends: Mapping[Tier, Backend],
        *,
        keyring: KeyringLike | None = None,
        audit: AuditSink | None = None,
        subject: str = "system0",
    ) -> None:
        self.catalog = catalog
        self.backends = backends
        self.keyring = keyring
        self.audit = audit
        self.subject = subject

    def encrypted(self, dataset: str) -> bool:
        """Whether ``dataset`` is encrypted at rest (False for a dataset not created yet)."""
        return bool(self.catalog.is_encrypted(dataset))

    def backend(self, tier: str) -> Backend:
        return self.backends[tier]  # type: ignore[index]

    def locate(self, dataset: str, p: Placement) -> str:
        """Where ``p``'s blob lives, for messages (a path, a table, a URI)."""
        return self.backend(p.backend).locate(dataset, p.blob)

    def put(self, dataset: str, tier: Tier, blob: str, data: bytes) -> None:
        """Store ``data`` as ``blob`` on ``tier``, announced to the catalog before the write."""
        self.catalog.begin_write(dataset, tier, blob)
        self.backends[tier].put(dataset, blob, data)

    def delete(self, dataset: str, tier: str, blob: str) -> None:
        self.backend(tier).delete(dataset, blob)

    def fetch(self, dataset: str, p: Placement) -> bytes:
        """The stored bytes of ``p``'s blob, checked against the catalog's length and SHA-256."""
        data = self.backend(p.backend).get(dataset, p.blob)
        if len(data) != p.blob_bytes or sha256(data) != p.blob_sha256:
            raise IntegrityError(
                f"checksum mismatch in {self.locate(dataset, p)}: expected sha256 "
                f"{p.blob_sha256} ({p.blob_bytes} bytes), found {sha256(data)} ({len(data)} "
                "bytes); the file is corrupt or was modified: restore it from a replica or backup"
            )
        return data

    def seal(self, dataset: str, plain: bytes) -> bytes:
        """``plain`` as it is stored: encrypted under the keyring if the dataset is."""
        if not self.encrypted(dataset):
            return plain
        return self._keyring(dataset).encrypt(plain, dataset_aad(dataset))

    def open(self, dataset: str, p: Placement, data: bytes) -> bytes:
        """The plaintext of ``data`` (fetched for ``p``): decrypted if the dataset is encrypted."""
        if not self.encrypted(dataset):
            return data
        keyring = self._keyring(dataset)
        try:
            return keyring.decrypt(data, dataset_aad(dataset))
        except Error:
            raise
        except Exception as e:  # a keyring outside system0 raises its own types
            raise CryptoError(
                f"{self.locate(dataset, p)}: could not be decrypted ({type(e).__name__}: {e}); "
                "the keyring lacks the key it was written with, or the data was tampered with"
            ) from e

    def load(self, dataset: str, p: Placement) -> tuple[int, bytes]:
        """Fetch, verify and open ``p``'s blob: (stored size, plaintext)."""
        raw = self.fetch(dataset, p)
        return len(raw), self.open(dataset, p, raw)

    def audited(self, action: str, dataset: str, version: str, meta: Mapping[str, Any]) -> None:
        """One audit entry for an access to ``dataset`` at ``version`` (none without a sink)."""
        if self.audit is not None:
            self.audit.log_data_access(
                self.subject, f"dataset:{dataset}@{version[:64]}", action, "allow", dict(meta)
            )

    def _keyring(self, dataset: str) -> KeyringLike:
        if self.keyring is None:
            raise ConfigError(f"dataset {dataset!r} is encrypted at rest; pass keyring=...")
        return self.keyring
