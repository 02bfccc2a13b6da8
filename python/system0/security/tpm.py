"""A TPM 2.0 root of trust: :class:`TpmKeyProvider` seals secrets to a TPM with tpm2-pytss.

The master key of a keyring (and the ledger's Ed25519 identity key) is generated on the host,
sealed into a TPM *sealed data object* (a keyedhash object with a NULL scheme) under the
owner hierarchy's storage primary key, and only the sealed blob (TPM2B_PUBLIC plus
TPM2B_PRIVATE, encrypted by the TPM) is stored: in the keyring file's provider parameters,
or wherever the caller keeps the identity blob. The storage primary is re-derived from the
TPM's owner seed on each use (``CreatePrimary`` with a fixed ECC P-256 template), so no
persistent handle is needed; a blob unseals only on the TPM that sealed it
(``fixedTPM | fixedParent``). Clearing the TPM's owner hierarchy destroys every key sealed
to it, which is crypto-shredding of the whole keyring.

``tcti`` selects the TPM: ``"device:/dev/tpmrm0"`` for hardware, ``"swtpm:port=2321"`` for a
software TPM (Debian's swtpm), None for the TSS default. Needs ``pip install 'system0[tpm]'``
(tpm2-pytss, which builds against libtss2-dev; see ``.ci/apt-tpm.sh``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from system0.errors import CryptoError
from system0.security.encryption import SigningKey
from system0.security.key_provider import MASTER_KEY_BYTES, decode_params, encode_params


def _tss() -> Any:
    try:
        import tpm2_pytss
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise CryptoError(
            "TpmKeyProvider needs tpm2-pytss: pip install 'system0[tpm]' (it builds against "
            f"libtss2-dev, see .ci/apt-tpm.sh); import failed: {e}"
        ) from None
    return tpm2_pytss


class TpmKeyProvider:
    """Seals the master key (and identity keys) to a TPM 2.0."""

    name = "tpm"

    def __init__(self, tcti: str | None = None) -> None:
        self.tcti = tcti

    def __repr__(self) -> str:
        return f"TpmKeyProvider(tcti={self.tcti!r})"

    def _run(self, what: str, fn: Any) -> Any:
        tss = _tss()
        try:
            ectx = tss.ESAPI(self.tcti)
        except Exception as e:
            raise CryptoError(
                f"cannot reach the TPM at tcti={self.tcti!r} to {what}: {e}; check the device "
                "or that swtpm is running"
            ) from None
        try:
            return fn(tss, ectx)
        except tss.TSS2_Exception as e:
            raise CryptoError(
                f"the TPM refused to {what}: {e} (a blob unseals only on the TPM that sealed "
                "it, and not after its owner hierarchy was cleared)"
            ) from None
        finally:
            ectx.close()

    @staticmethod
    def _primary(tss: Any, ectx: Any) -> Any:
        from tpm2_pytss.constants import TPMA_OBJECT
        from tpm2_pytss.types import TPM2B_PUBLIC

        template = TPM2B_PUBLIC.parse(
            "ecc256:aes128cfb",
            objectAttributes=TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS,
        )
        handle, *_ = ectx.create_primary(None, template)
        return handle

    def seal_secret(self, secret: bytes | bytearray) -> bytes:
        """Seal up to 128 bytes to this TPM; returns a blob safe to store anywhere."""
        if not 1 <= len(secret) <= 128:
            raise CryptoError(f"a TPM sealed object holds 1 to 128 bytes, got {len(secret)}")

        def seal(tss: Any, ectx: Any) -> bytes:
            from tpm2_pytss.constants import TPMA_OBJECT
            from tpm2_pytss.types import (
                TPM2B_PUBLIC,
                TPM2B_SENSITIVE_CREATE,
                TPM2B_SENSITIVE_DATA,
                TPMS_SENSITIVE_CREATE,
            )

            primary = self._primary(tss, ectx)
            try:
                attrs = TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT
                public = TPM2B_PUBLIC.parse("keyedhash", objectAttributes=attrs)
                sensitive = TPM2B_SENSITIVE_CREATE(
                    TPMS_SENSITIVE_CREATE(data=TPM2B_SENSITIVE_DATA(bytes(secret)))
                )
                private, out_public, *_ = ectx.create(primary, sensitive, public)
            finally:
                ectx.flush_context(primary)
            doc = {"public": out_public.marshal().hex(), "private": private.marshal().hex()}
            return json.dumps(doc, sort_keys=True).encode()

        blob: bytes = self._run("seal a secret", seal)
        return blob

    def unseal_secret(self, blob: bytes) -> bytearray:
        """The secret sealed in ``blob``, as a bytearray the caller should wipe."""
        try:
            doc = json.loads(blob)
            public_bytes = bytes.fromhex(doc["public"])
            private_bytes = bytes.fromhex(doc["private"])
        except (ValueError, KeyError, TypeError) as e:
            raise CryptoError(f"TPM sealed blob is malformed: {e}") from None

        def unseal(tss: Any, ectx: Any) -> bytearray:
            from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC

            primary = self._primary(tss, ectx)
            try:
                public, _ = TPM2B_PUBLIC.unmarshal(public_bytes)
                private, _ = TPM2B_PRIVATE.unmarshal(private_bytes)
                item = ectx.load(primary, private, public)
                try:
                    return bytearray(bytes(ectx.unseal(item)))
                finally:
                    ectx.flush_context(item)
            finally:
                ectx.flush_context(primary)

        secret: bytearray = self._run("unseal a secret", unseal)
        return secret

    # KeyProvider
    def create_master_key(self) -> tuple[bytearray, bytes]:
        key = bytearray(os.urandom(MASTER_KEY_BYTES))
        sealed = self.seal_secret(key)
        return key, encode_params(self.name, sealed=sealed.decode())

    def master_key(self, params: bytes) -> bytearray:
        doc = decode_params(params, self.name)
        key = self.unseal_secret(str(doc.get("sealed", "")).encode())
        if len(key) != MASTER_KEY_BYTES:
            raise CryptoError("the TPM returned a master key of the wrong length")
        return key

    # the identity key
    def seal_signing_key(self, key: SigningKey) -> bytes:
        """Seal an Ed25519 identity key (e.g. the ledger's) to this TPM."""
        return self.seal_secret(key.secret_bytes())

    def load_signing_key(self, blob: bytes) -> SigningKey:
        """Unseal an identity key sealed by :meth:`seal_signing_key`."""
        seed = self.unseal_secret(blob)
        try:
            return SigningKey(seed)
        finally:
            seed[:] = bytes(len(seed))


__all__ = ["TpmKeyProvider"]
