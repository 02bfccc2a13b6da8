"""system0.security: encryption with key rotation, the audit ledger, differential privacy,
access control, and :class:`AISecurityManager` composing them in the right order.

The names below are the part's surface (see ``system0.facade`` for how they load).
"""

from typing import TYPE_CHECKING

from system0.facade import lazy_exports

if TYPE_CHECKING:
    from system0.security.access_control import (
        Enforcer as Enforcer,
    )
    from system0.security.access_control import (
        Policy as Policy,
    )
    from system0.security.access_control import (
        Subject as Subject,
    )
    from system0.security.access_control import (
        require as require,
    )
    from system0.security.audit import (
        AuditLedger as AuditLedger,
    )
    from system0.security.audit import (
        merkle_root as merkle_root,
    )
    from system0.security.audit import (
        verify_consistency as verify_consistency,
    )
    from system0.security.audit import (
        verify_inclusion as verify_inclusion,
    )
    from system0.security.audit_sink import AuditSink as AuditSink
    from system0.security.encryption import (
        KeyProvider as KeyProvider,
    )
    from system0.security.encryption import (
        Keyring as Keyring,
    )
    from system0.security.encryption import (
        SigningKey as SigningKey,
    )
    from system0.security.manager import AISecurityManager as AISecurityManager
    from system0.security.privacy import (
        PrivacyAccountant as PrivacyAccountant,
    )
    from system0.security.privacy import (
        Release as Release,
    )
    from system0.security.privacy_budgets import PrivacyBudgets as PrivacyBudgets

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "system0.security.access_control": (
            "Enforcer",
            "Policy",
            "Subject",
            "require",
        ),
        "system0.security.audit": (
            "AuditLedger",
            "merkle_root",
            "verify_consistency",
            "verify_inclusion",
        ),
        "system0.security.audit_sink": ("AuditSink",),
        "system0.security.encryption": (
            "KeyProvider",
            "Keyring",
            "SigningKey",
        ),
        "system0.security.manager": ("AISecurityManager",),
        "system0.security.privacy": (
            "PrivacyAccountant",
            "Release",
        ),
        "system0.security.privacy_budgets": ("PrivacyBudgets",),
    },
)
