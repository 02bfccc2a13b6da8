"""Who is asking: subjects, hardware device identities, and short-lived signed tokens.

A :class:`Subject` is what access control decides about: an id, the roles it claims (globally
and per domain), and optionally an :class:`AttestedDevice`, proof that the request comes from a
machine holding a known device identity key ("RBAC tied to hardware identity"). The key itself
may live in a TPM (another part of system0 seals it there); this module only needs its public
half, as a :class:`DeviceIdentity`, and an Ed25519 signature over a fresh challenge.

Tokens authenticate principals between processes: a compact JWS (``header.payload.signature``,
base64url, ``alg: EdDSA``) signed with Ed25519, carrying issuer, subject, audience, issue and
expiry times, roles, and optionally the device fingerprint the token is bound to (``cnf``). The
signer is anything with ``sign(message) -> bytes``: a ``cryptography`` Ed25519 private key, or a
KeyProvider that keeps the key in a TPM. Every primitive is from the ``cryptography`` package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from system0.errors import AccessDenied, ValidationError

__all__ = [
    "ATTESTATION_CONTEXT",
    "AttestedDevice",
    "DeviceIdentity",
    "Signer",
    "Subject",
    "TokenIssuer",
    "TokenVerifier",
    "sign_challenge",
]

# Prefixed to every challenge before signing, so that a device key's attestation signature can
# never be replayed as a signature in some other protocol that uses the same key.
ATTESTATION_CONTEXT = b"system0 device attestation v1\x00"
_SEAL = object()  # only DeviceIdentity.attest may build an AttestedDevice


class Signer(Protocol):
    """Anything that signs with Ed25519: a private key object, or a KeyProvider over a TPM."""

    def sign(self, data: bytes) -> bytes: ...


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class DeviceIdentity:
    """The public half of a device identity key (Ed25519, 32 raw bytes)."""

    public_key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise ValidationError(
                "DeviceIdentity: public_key must be the 32 raw bytes of an Ed25519 public key"
            )

    @classmethod
    def from_public_key(cls, key: Ed25519PublicKey) -> DeviceIdentity:
        return cls(_raw_public(key))

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the raw public key; what policies name devices by."""
        return "sha256:" + hashlib.sha256(self.public_key).hexdigest()

    def attest(self, challenge: bytes, signature: bytes) -> AttestedDevice:
        """Verify that the device signed ``ATTESTATION_CONTEXT + challenge``.

        ``challenge`` must be fresh (random, issued by the verifier, used once): the freshness
        is what stops a recorded attestation from being replayed.
        """
        if len(challenge) < 16:
            raise ValidationError("attest: the challenge must be at least 16 random bytes")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature, ATTESTATION_CONTEXT + challenge
            )
        except InvalidSignature:
            raise AccessDenied(
                f"device attestation failed for {self.fingerprint}: the signature over the "
                "challenge does not verify under this device key; the request does not come "
                "from that device"
            ) from None
        return AttestedDevice(self.fingerprint, time.time_ns(), _seal=_SEAL)


@dataclass(frozen=True)
class AttestedDevice:
    """A device identity proven by a verified signature.

    Built only by :meth:`DeviceIdentity.attest`; constructing one directly raises.
    """

    fingerprint: str
    attested_at_ns: int
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise ValidationError(
                "AttestedDevice is built only by DeviceIdentity.attest(challenge, signature)"
            )


def sign_challenge(signer: Signer, challenge: bytes) -> bytes:
    """The device side of an attestation: sign the challenge under the attestation context."""
    return signer.sign(ATTESTATION_CONTEXT + challenge)


@dataclass(frozen=True)
class Subject:
    """A principal: an id, its claimed roles (global and per domain), an attested device.

    Claimed roles are trusted as given, so build a Subject from a verified token
    (:meth:`TokenVerifier.verify`) or from your own authenticated session, never from raw
    request fields. Policies may also bind roles to the subject id.
    """

    id: str
    roles: frozenset[str] = frozenset()
    domain_roles: tuple[tuple[str, frozenset[str]], ...] = ()
    device: AttestedDevice | None = None
    device_binding: str | None = None  # fingerprint a token bound this subject to
    # Precomputed in __post_init__: the enforcer's decision cache keys on it (hashing is its
    # hot path). Public, read-only by convention: it is derived, never passed.
    cache_key: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValidationError(f"Subject: id must be a non-empty string, got {self.id!r}")
        object.__setattr__(self, "roles", frozenset(self.roles))
        dr = self.domain_roles
        pairs = dr.items() if isinstance(dr, Mapping) else dr
        norm = tuple(sorted((str(d), frozenset(r)) for d, r in pairs))
        object.__setattr__(self, "domain_roles", norm)
        # A token bound to a device (its ``cnf`` claim) yields a subject with the binding and no
        # device yet: the enforcer denies it everything until with_device() adds an attested
        # device, and a different device is refused right here.
        if (
            self.device_binding is not None
            and self.device is not None
            and self.device.fingerprint != self.device_binding
        ):
            raise AccessDenied(
                f"subject {self.id!r}: its token is bound to device {self.device_binding}, but "
                f"the request attests {self.device.fingerprint}; use the bound device"
            )
        fp = self.device.fingerprint if self.device is not None else None
        object.__setattr__(self, "cache_key", (self.id, self.roles, norm, fp, self.device_binding))

    @classmethod
    def of(
        cls,
        id: str,
        roles: Iterable[str] = (),
        domain_roles: Mapping[str, Iterable[str]] | None = None,
        device: AttestedDevice | None = None,
    ) -> Subject:
        dr = tuple((d, frozenset(r)) for d, r in (domain_roles or {}).items())
        return cls(id, frozenset(roles), dr, device)

    def roles_in(self, domain: str | None) -> frozenset[str]:
        if domain is None:
            return self.roles
        for d, r in self.domain_roles:
            if d == domain:
                return self.roles | r
        return self.roles

    def with_device(self, device: AttestedDevice) -> Subject:
        """This subject, on an attested device (checked against the token's binding, if any)."""
        return Subject(self.id, self.roles, self.domain_roles, device, self.device_binding)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "EdDSA", "typ": "JWT"}, separators=(",", ":")).encode())


class TokenIssuer:
    """Issues short-lived Ed25519-signed tokens (``ttl_s`` at most ``max_ttl_s``)."""

    def __init__(
        self,
        signer: Signer,
        issuer: str,
        *,
        max_ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = signer
        self.issuer = issuer
        self.max_ttl_s = max_ttl_s
        self._clock = clock

    def __repr__(self) -> str:  # never the key
        return f"TokenIssuer(issuer={self.issuer!r}, max_ttl_s={self.max_ttl_s})"

    def issue(
        self,
        subject: str,
        *,
        audience: str,
        roles: Iterable[str] = (),
        domain_roles: Mapping[str, Iterable[str]] | None = None,
        ttl_s: float = 300.0,
        device_fingerprint: str | None = None,
    ) -> str:
        if not subject or not audience:
            raise ValidationError("issue: subject and audience must be non-empty")
        if not 0 < ttl_s <= self.max_ttl_s:
            raise ValidationError(
                f"issue: ttl_s must be in (0, {self.max_ttl_s}] seconds, got {ttl_s}; tokens "
                "are short-lived by design"
            )
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + int(ttl_s),
            "roles": sorted(set(roles)),
        }
        if domain_roles:
            claims["droles"] = {d: sorted(set(r)) for d, r in sorted(domain_roles.items())}
        if device_fingerprint is not None:
            claims["cnf"] = {"dev": device_fingerprint}
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signing_input = f"{_HEADER}.{body}".encode("ascii")
        return f"{_HEADER}.{body}.{_b64(self._signer.sign(signing_input))}"


class TokenVerifier:
    """Verifies tokens for one audience; returns the :class:`Subject` they authenticate.

    Every failure is :class:`~system0.errors.AccessDenied` saying which check failed; nothing
    from an unverified token is ever returned.
    """

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        *,
        audience: str,
        issuer: str,
        leeway_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = public_key
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self._clock = clock

    def verify(self, token: str) -> Subject:
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3:
            raise AccessDenied("token rejected: not a compact JWS (header.payload.signature)")
        header, body, sig = parts
        try:
            if json.loads(_unb64(header)) != {"alg": "EdDSA", "typ": "JWT"}:
                raise AccessDenied("token rejected: only alg EdDSA is accepted")
            self._key.verify(_unb64(sig), f"{header}.{body}".encode("ascii"))
        except InvalidSignature:
            raise AccessDenied(
                "token rejected: bad signature (not issued by the trusted key, or altered)"
            ) from None
        except (ValueError, UnicodeError) as exc:
            raise AccessDenied(f"token rejected: malformed ({exc})") from None
        try:
            claims = json.loads(_unb64(body))
        except ValueError as exc:
            raise AccessDenied(f"token rejected: malformed payload ({exc})") from None
        if not isinstance(claims, dict):
            raise AccessDenied("token rejected: the payload is not a JSON object")
        now = self._clock()
        if claims.get("iss") != self.issuer:
            raise AccessDenied(
                f"token rejected: issuer {claims.get('iss')!r} is not {self.issuer!r}"
            )
        if claims.get("aud") != self.audience:
            raise AccessDenied(
                f"token rejected: audience {claims.get('aud')!r} is not {self.audience!r}"
            )
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise AccessDenied("token rejected: exp and iat must be integer seconds")
        if now > exp + self.leeway_s:
            raise AccessDenied(f"token rejected: expired {now - exp:.0f} s ago; get a new one")
        if iat > now + self.leeway_s:
            raise AccessDenied("token rejected: issued in the future (clock skew?)")
        try:
            cnf = claims.get("cnf", {}).get("dev")
            return Subject(
                claims["sub"],
                frozenset(claims.get("roles", ())),
                tuple((d, frozenset(r)) for d, r in claims.get("droles", {}).items()),
                device_binding=cnf,
            )
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            raise AccessDenied(f"token rejected: malformed claims ({exc})") from None
