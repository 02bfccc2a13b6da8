"""system0.security: encryption with key rotation, the audit ledger, differential privacy,
access control, and :class:`AISecurityManager` composing them in the right order."""

from system0.security.manager import AISecurityManager

__all__ = ["AISecurityManager"]
