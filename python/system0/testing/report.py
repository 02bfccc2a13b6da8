"""The gate report: every suite's result and one verdict, bound to the model's content hash and
the config hash, signed with Ed25519.

File form (``gate-report.json``)::

    {"format": "system0-gate-report", "version": 1,
     "body": {"model": {"content_hash", "name", "source"}, "config_hash", "verdict",
              "failed": [suite, ...], "suites": [...], "machine_class", "created",
              "system0_version", "seconds"},
     "signature": {"algorithm": "ed25519", "key_id", "public_key", "value"} | null}

The signature covers ``DOMAIN`` followed by the RFC 8785 canonical JSON of ``body``
(``system0.core.config.canonical``), so any change to any figure, check or hash breaks it, and
the domain prefix keeps a gate signature from being mistaken for a config signature made with
the same key. Keys are the PEM files of ``system0 config keygen`` (Ed25519, PKCS#8 and SPKI).
A report written without a signing key is unsigned, and the deploy path refuses it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from system0.core.config.canonical import canonical_json
from system0.core.config.signing import key_id, load_private_key, load_public_key
from system0.errors import IntegrityError, ValidationError
from system0.testing.results import SuiteResult

__all__ = ["DOMAIN", "GateReport", "VerifyKey", "load_signing_key", "public_key_of"]

FORMAT = "system0-gate-report"
VERSION = 1
DOMAIN = b"system0-gate-report-v1\x00"

VerifyKey = Ed25519PublicKey | bytes | str | os.PathLike[str]
"""A public key object, its 32 raw bytes, or the path of its PEM file."""


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file (``system0 config keygen`` writes one)."""
    return load_private_key(path)


def public_key_of(key: VerifyKey) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, bytes):
        if len(key) != 32:
            raise ValidationError(f"a raw Ed25519 public key is 32 bytes, got {len(key)}")
        return Ed25519PublicKey.from_public_bytes(key)
    return load_public_key(key)


@dataclass(frozen=True)
class GateReport:
    """One run of the gate over one model; ``signature`` is None until :meth:`signed`."""

    model_hash: str
    config_hash: str | None
    suites: list[SuiteResult]
    model_name: str = "model"
    source: str = ""
    machine_class: str = ""
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0
    system0_version: str = ""
    signature: dict[str, str] | None = None

    @property
    def passed(self) -> bool:
        return bool(self.suites) and all(s.passed for s in self.suites)

    @property
    def failed(self) -> list[str]:
        return [s.name for s in self.suites if not s.passed]

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    def suite(self, name: str) -> SuiteResult:
        for s in self.suites:
            if s.name == name:
                return s
        raise KeyError(f"no suite {name!r} in this report; it has {[s.name for s in self.suites]}")

    def body(self) -> dict[str, Any]:
        return {
            "model": {
                "content_hash": self.model_hash,
                "name": self.model_name,
                "source": self.source,
            },
            "config_hash": self.config_hash,
            "verdict": self.verdict,
            "failed": self.failed,
            "suites": [s.to_dict() for s in self.suites],
            "machine_class": self.machine_class,
            "created": self.created,
            "seconds": round(self.seconds, 3),
            "system0_version": self.system0_version,
        }

    def message(self) -> bytes:
        """What the signature covers: the domain, then the canonical body."""
        return DOMAIN + canonical_json(self.body())

    def signed(self, key: Ed25519PrivateKey) -> GateReport:
        public = key.public_key()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        sig = {
            "algorithm": "ed25519",
            "key_id": key_id(public),
            "public_key": base64.b64encode(raw).decode(),
            "value": base64.b64encode(key.sign(self.message())).decode(),
        }
        return replace(self, signature=sig)

    def verify(self, key: VerifyKey) -> str:
        """Check the signature with the trusted ``key``; return its key id, or raise
        :class:`IntegrityError` saying what is wrong."""
        trusted = public_key_of(key)
        want = key_id(trusted)
        sig = self.signature
        if sig is None:
            raise IntegrityError("the report is unsigned; run the gate with --signing-key")
        if not isinstance(sig, dict):
            raise IntegrityError(f"the report's signature is a {type(sig).__name__}, not an object")
        if sig.get("algorithm") != "ed25519" or sig.get("key_id") != want:
            raise IntegrityError(
                f"the report is signed by {sig.get('key_id')!r} ({sig.get('algorithm')}), not by "
                f"the trusted key {want}"
            )
        try:
            value = base64.b64decode(sig.get("value", ""), validate=True)
            trusted.verify(value, self.message())
        except (InvalidSignature, binascii.Error, ValueError):
            raise IntegrityError(
                f"the signature by {want} does not verify: the report was changed after it "
                "was signed, or the signature is corrupt"
            ) from None
        return want

    # --- file form --------------------------------------------------------------------------

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "body": self.body(),
            "signature": self.signature,
        }
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"

    def write(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, p)
        return p

    @classmethod
    def from_json(cls, text: str, where: str = "report") -> GateReport:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"{where}: not JSON ({exc})") from None
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or doc.get("version") != VERSION
        ):
            raise ValidationError(f"{where}: not a {FORMAT} v{VERSION} file")
        try:
            body = doc["body"]
            model = body["model"]
            report = cls(
                model_hash=str(model["content_hash"]),
                config_hash=None if body["config_hash"] is None else str(body["config_hash"]),
                suites=[SuiteResult.from_dict(s) for s in body["suites"]],
                model_name=str(model.get("name", "")),
                source=str(model.get("source", "")),
                machine_class=str(body.get("machine_class", "")),
                created=str(body.get("created", "")),
                seconds=float(body.get("seconds", 0.0)),
                system0_version=str(body.get("system0_version", "")),
                signature=doc.get("signature"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"{where}: malformed gate report ({exc!r})") from None
        # the stored verdict must be the one its suites give: a hand-edited verdict is refused
        if body.get("verdict") != report.verdict or body.get("failed") != report.failed:
            raise ValidationError(f"{where}: its verdict does not follow from its suites")
        return report

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> GateReport:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ValidationError(
                f"cannot read gate report {os.fspath(path)}: {exc.strerror}"
            ) from None
        return cls.from_json(text, os.fspath(path))
