"""``AuditSink``: where every part of system0 records what it did (one protocol, not four).

``system0.security.audit.AuditLedger`` implements it; so may any integrator's sink. Two verbs,
because two kinds of records exist: ``append`` takes a whole record (a configuration's
emergency override, a privacy release, a deploy), ``log_data_access`` the decision on one
access (a storage read or write, an access-control check), which the ledger stores as a
``data_access`` record. A part calls only the verb it needs, but a sink offers both, so one
sink serves every part of a process.

This module imports nothing from system0, so every layer (``core.config``, ``data.storage``,
``security``) can depend on it without depending on the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["AuditSink"]


class AuditSink(Protocol):
    """An append-only record of what was done (``AuditLedger`` is the one system0 ships)."""

    def append(self, entry: Mapping[str, Any]) -> object:
        """Record ``entry`` (JSON-ready values); raise if it could not be recorded."""
        ...

    def log_data_access(
        self,
        subject: str,
        resource: str,
        action: str,
        decision: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> object:
        """Record that ``subject`` asked to ``action`` on ``resource`` and got ``decision``."""
        ...
