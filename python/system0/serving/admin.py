"""Who may call the admin routes (deploy, promote, rollback, drain): RBAC tokens.

An admin call carries ``Authorization: Bearer <token>``, a token of the security spine
(:class:`~system0.security.identity.TokenIssuer`, Ed25519-signed, short-lived). The token is
verified for the server's audience, then the policy decides whether its subject may
perform the action on ``model/<name>``. A missing token is 401; a forged, expired or
foreign token and a subject the policy denies are 403. Every refusal is one audit ledger
entry (``admin_denied``) naming who (when known), what and why; an allowed call is audited
by the deployment itself (deploy, switch, rollback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from system0.errors import AccessDenied
from system0.security.access_control import Enforcer
from system0.security.identity import Subject, TokenVerifier

__all__ = ["ADMIN_ACTIONS", "AdminAuth", "AuditAppend", "Unauthenticated"]

ADMIN_ACTIONS = ("deploy", "promote", "rollback", "drain")


class AuditAppend(Protocol):
    """The part of :class:`~system0.security.audit.AuditLedger` the server uses."""

    def append(self, entry: bytes | Mapping[str, Any]) -> int: ...


class Unauthenticated(AccessDenied):
    """No credentials were presented (answered 401, with ``WWW-Authenticate: Bearer``)."""


@dataclass
class AdminAuth:
    """Token verification, the RBAC policy and where refusals are audited."""

    verifier: TokenVerifier
    enforcer: Enforcer
    audit: AuditAppend | None = None

    def authorize(self, authorization: str | None, model: str, action: str) -> Subject:
        """The subject allowed ``action`` on ``model/<model>``; raises
        :class:`Unauthenticated` or :class:`AccessDenied` (audited) otherwise."""
        resource = f"model/{model}"
        if not authorization:
            self._deny(None, resource, action, "no token")
            raise Unauthenticated(
                f"{action} {resource} needs an admin token: send 'Authorization: Bearer <token>'"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._deny(None, resource, action, "not a bearer token")
            raise Unauthenticated(
                f"{action} {resource}: the Authorization header must be 'Bearer <token>'"
            )
        try:
            subject = self.verifier.verify(token.strip())
        except AccessDenied as exc:
            self._deny(None, resource, action, str(exc))
            raise
        decision = self.enforcer.check(subject, resource, action)
        if not decision.allowed:
            self._deny(subject.id, resource, action, decision.reason)
            raise AccessDenied(f"access denied: {decision.explain()}")
        return subject

    def _deny(self, subject: str | None, resource: str, action: str, reason: str) -> None:
        if self.audit is not None:
            self.audit.append(
                {
                    "type": "admin_denied",
                    "subject": subject,
                    "resource": resource,
                    "action": action,
                    "reason": reason,
                }
            )
