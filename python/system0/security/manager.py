"""``AISecurityManager``: the security spine composed in the right order.

The seed's sketch encrypted data and then added differential-privacy noise to the ciphertext.
That protects nothing (noise on ciphertext only corrupts it) and is not done here. The order is:

1. **access control** decides whether the subject may do this to this resource (the enforcer
   records the decision, allow or deny, in the ledger);
2. **encryption** seals the data under the keyring's primary key (AES-256-GCM, committing);
3. **audit** appends what was done (who, what, the envelope's digest and key id, never the
   plaintext) to the encrypted, Merkle-chained ledger.

Differential privacy belongs to *released aggregates*: :meth:`AISecurityManager.privacy`
hands out one budget accountant per dataset, whose every release and refusal is written to
the same ledger; on start-up the spent budget is re-charged from the ledger, so a restart
never hands out a budget twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from system0.errors import ValidationError
from system0.security.access_control import Enforcer
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring, envelope_key_id
from system0.security.identity import Subject
from system0.security.privacy import PrivacyAccountant
from system0.security.privacy_budgets import PrivacyBudgets


class AISecurityManager:
    """Access check, then encryption, then audit; privacy on released aggregates only.

    ``enforcer`` is optional: without one every subject may act (a single-tenant process) and
    subjects may be plain strings; with one, subjects must be :class:`Subject` objects (built
    from a verified token) and a refusal raises :class:`system0.errors.AccessDenied` before
    anything is encrypted or decrypted. ``privacy_enabled=False`` is the config switch that
    makes releases exact (and say so).
    """

    def __init__(
        self,
        keyring: Keyring,
        ledger: AuditLedger,
        *,
        enforcer: Enforcer | None = None,
        privacy_epsilon: float = 1.0,
        privacy_delta: float = 0.0,
        privacy_enabled: bool = True,
        privacy_budgets: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.keyring = keyring
        self.ledger = ledger
        self.enforcer = enforcer
        self._budgets = PrivacyBudgets(
            privacy_epsilon,
            privacy_delta,
            budgets=privacy_budgets,
            enabled=privacy_enabled,
            audit=ledger,
        )
        self._budgets.replay(self._recorded_releases())

    def _recorded_releases(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for index in range(self.ledger.size):
            try:
                doc = self.ledger.read(index).json()
            except ValueError:  # an entry appended as raw bytes, not a JSON record
                continue
            if isinstance(doc, dict) and doc.get("kind") == "dp_release":
                records.append(doc)
        return records

    def _authorize(self, subject: Subject | str, resource: str, action: str) -> str:
        if self.enforcer is None:
            return subject.id if isinstance(subject, Subject) else _subject_id(subject)
        if not isinstance(subject, Subject):
            raise ValidationError(
                f"AISecurityManager: with an access policy the subject must be a Subject "
                f"(from a verified token), got {type(subject).__name__} {subject!r}"
            )
        self.enforcer.require(subject, resource, action)
        return subject.id

    def secure(
        self, data: bytes, *, subject: Subject | str, resource: str, aad: bytes = b""
    ) -> bytes:
        """Authorize ``subject`` to write ``resource``, encrypt ``data``, record it; returns
        the envelope. ``aad`` is bound to the envelope and must be given again to open it."""
        who = self._authorize(subject, resource, "write")
        envelope = self.keyring.encrypt(data, aad=aad)
        self.ledger.log_data_access(who, resource, "encrypt", "allow", _digest(envelope, data))
        return envelope

    def unseal(
        self, envelope: bytes, *, subject: Subject | str, resource: str, aad: bytes = b""
    ) -> bytes:
        """Authorize ``subject`` to read ``resource``, decrypt, record it; returns plaintext."""
        who = self._authorize(subject, resource, "read")
        data = self.keyring.decrypt(envelope, aad=aad)
        self.ledger.log_data_access(who, resource, "decrypt", "allow", _digest(envelope, data))
        return data

    def privacy(self, dataset: str) -> PrivacyAccountant:
        """The budget accountant of ``dataset``: count, sum, mean, histogram, quantile."""
        return self._budgets[dataset]


def _subject_id(subject: str) -> str:
    if not isinstance(subject, str) or not subject:
        raise ValidationError(
            f"AISecurityManager: subject must be a non-empty string or a Subject, got {subject!r}"
        )
    return subject


def _digest(envelope: bytes, data: bytes) -> dict[str, Any]:
    # What the ledger may know: sizes, the key and a digest of the ciphertext. A digest of
    # the plaintext would let anyone confirm a guessed plaintext, so it is never recorded.
    return {
        "bytes": len(data),
        "key_id": envelope_key_id(envelope),
        "envelope_sha256": hashlib.sha256(envelope).hexdigest(),
    }
