"""Ed25519 detached signatures over the canonical resolved form of a configuration.

What is signed
--------------
The message is ``b"system0-config-signature-v1\\x00"`` followed by the canonical JSON of the
*resolved* configuration (after ``${env:...}``/``${ref:...}`` interpolation, migration and
validation, with every default filled in) as RFC 8785 (JCS) defines it: keys sorted, no
whitespace, UTF-8, ECMAScript number formatting (see ``config.canonical``). The
prefix separates these signatures from anything else the same key may sign. Because the
resolved form is signed, a signature holds only while the file *and* the environment it reads
give the same values: changing either is reported as a content mismatch.

Signature file (``<config>.sig``, UTF-8 JSON object)
----------------------------------------------------
``format``          ``"system0-config-signature"``
``version``         ``1``
``algorithm``       ``"ed25519"``
``key_id``          ``"ed25519:"`` + the first 16 hex digits of sha256(raw 32-byte public key)
``content_hash``    ``"sha256:<hex>"`` of the canonical form that was signed (its id)
``schema_version``  the configuration's schema version
``signature``       standard base64 of the 64-byte Ed25519 signature

Keys are PEM files: the private key PKCS#8 (unencrypted, mode 0600), the public key
SubjectPublicKeyInfo. Trusted keys come from the ``trusted_keys`` argument of the loader or the
``SYSTEM0_CONFIG_TRUSTED_KEYS`` environment variable (paths of ``.pub``/``.pem`` files or of
directories holding them, separated by ``os.pathsep``). When any trusted key is configured, a
configuration without a valid signature by one of them is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from system0.core.config.canonical import content_hash
from system0.errors import ConfigError

FORMAT = "system0-config-signature"
VERSION = 1
ALGORITHM = "ed25519"
DOMAIN = b"system0-config-signature-v1\x00"
TRUSTED_KEYS_ENV = "SYSTEM0_CONFIG_TRUSTED_KEYS"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def signature_path(config_path: str | os.PathLike[str]) -> Path:
    """Where the detached signature of ``config_path`` lives: ``<config>.sig``."""
    p = Path(config_path)
    return p.with_name(p.name + ".sig")


# -- keys ------------------------------------------------------------------------------------


def generate_keypair(private_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write a new private key (mode 0600) and ``<private>.pub``; refuse to overwrite."""
    priv_path = Path(private_path)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists():
            raise ConfigError(f"{p} already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub_path.write_bytes(public_pem(key.public_key()))
    return priv_path, pub_path


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: is a {type(key).__name__}; config signing needs Ed25519")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: is a {type(key).__name__}; config signing needs Ed25519")
    return key


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from None


TrustedKey = Ed25519PublicKey | str | os.PathLike[str]


def trusted_keys(
    keys: Iterable[TrustedKey] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Ed25519PublicKey]:
    """The trusted keys by id: ``keys`` when given, else those named by the environment.

    Each entry is a public key object, a PEM file, or a directory whose ``*.pub`` and ``*.pem``
    files are all read. An empty result means no trust is configured.
    """
    if keys is None:
        raw = (os.environ if env is None else env).get(TRUSTED_KEYS_ENV, "")
        keys = [p for p in raw.split(os.pathsep) if p.strip()]
    out: dict[str, Ed25519PublicKey] = {}
    for entry in keys:
        if isinstance(entry, Ed25519PublicKey):
            out[key_id(entry)] = entry
            continue
        p = Path(entry)
        files = (
            sorted(f for f in p.iterdir() if f.suffix in (".pub", ".pem")) if p.is_dir() else [p]
        )
        for f in files:
            k = load_public_key(f)
            out[key_id(k)] = k
    return out


# -- signatures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """A parsed signature file."""

    key_id: str
    content_hash: str
    schema_version: int
    signature: bytes

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "content_hash": self.content_hash,
            "schema_version": self.schema_version,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str, where: str) -> Signature:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"{where}: signature file is not JSON ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ConfigError(f"{where}: not a system0 config signature (format != {FORMAT!r})")
        if doc.get("version") != VERSION or doc.get("algorithm") != ALGORITHM:
            raise ConfigError(
                f"{where}: unsupported signature version {doc.get('version')!r} / algorithm "
                f"{doc.get('algorithm')!r}; this release reads version {VERSION}, {ALGORITHM}"
            )
        try:
            sig = base64.b64decode(str(doc["signature"]), validate=True)
            out = Signature(
                str(doc["key_id"]), str(doc["content_hash"]), int(doc["schema_version"]), sig
            )
        except (KeyError, ValueError, TypeError, binascii.Error) as e:
            raise ConfigError(f"{where}: malformed signature file ({e!r})") from None
        if len(sig) != 64:
            raise ConfigError(f"{where}: signature is {len(sig)} bytes; Ed25519 gives 64")
        return out


def sign(canonical: bytes, schema_version: int, private: Ed25519PrivateKey) -> Signature:
    return Signature(
        key_id(private.public_key()),
        content_hash(canonical),
        schema_version,
        private.sign(DOMAIN + canonical),
    )


def verify(
    canonical: bytes,
    sig: Signature,
    trusted: Mapping[str, Ed25519PublicKey],
    where: str,
) -> str:
    """Check ``sig`` over ``canonical`` against ``trusted``; return the key id that signed.

    Raises :class:`ConfigError` saying which check failed: an untrusted key, content that
    changed since signing, or a signature that does not verify.
    """
    key = trusted.get(sig.key_id)
    if key is None:
        known = ", ".join(sorted(trusted)) or "none"
        raise ConfigError(
            f"{where}: signed by key {sig.key_id}, which is not trusted (trusted: {known}); "
            "add its public key to the trusted keys or re-sign with a trusted key"
        )
    actual = content_hash(canonical)
    if actual != sig.content_hash:
        raise ConfigError(
            f"{where}: content changed since it was signed: the signature covers "
            f"{sig.content_hash} but the resolved config is {actual} (the file or an "
            "environment variable it reads differs); review the change and re-sign"
        )
    try:
        key.verify(sig.signature, DOMAIN + canonical)
    except InvalidSignature:
        raise ConfigError(
            f"{where}: signature by {sig.key_id} does not verify: the signature file was "
            "tampered with or corrupted; re-sign the config"
        ) from None
    return sig.key_id


__all__ = [
    "ALGORITHM",
    "FORMAT",
    "TRUSTED_KEYS_ENV",
    "Signature",
    "content_hash",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "public_pem",
    "sign",
    "signature_path",
    "trusted_keys",
    "verify",
]
