"""The one exception hierarchy of system0, rooted at :class:`Error`.

Every message says what was wrong, where, and what to do. The Rust core raises these same
classes (``rust/error.rs`` imports them), so ``except system0.Error`` catches everything the
package raises on purpose. Exceptions that describe bad values also derive from the matching
builtin (``ValidationError`` is a ``ValueError``) so generic callers keep working.
"""

from __future__ import annotations


class Error(Exception):
    """Base of every error system0 raises on purpose."""


class ValidationError(Error, ValueError):
    """Input broke its contract (a schema, a range, a format)."""


class CardinalityError(Error, ValueError):
    """A metric family hit its cap on distinct label sets.

    Attributes: ``metric`` (the family name) and ``cap`` (the limit that was hit).
    """

    def __init__(self, message: str, metric: str = "", cap: int = 0) -> None:
        super().__init__(message)
        self.metric = metric
        self.cap = cap

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigError(Error, ValueError):
    """A configuration could not be loaded, verified or validated."""


class Overloaded(Error):
    """Backpressure: the system refused work instead of degrading silently.

    Attributes: ``depth`` (items waiting when the work was refused) and ``retry_after``
    (seconds after which a retry is likely to be admitted).
    """

    def __init__(self, message: str, depth: int = 0, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.depth = depth
        self.retry_after = retry_after

    def __str__(self) -> str:
        return str(self.args[0])


class DeadlineExceeded(Error, TimeoutError):
    """Work could not finish within its budget and was not run (or was abandoned)."""


class CircuitOpen(Error):
    """A circuit breaker is open; the call was not attempted.

    Attribute: ``retry_after`` (seconds until the breaker lets a probe call through).
    """

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return str(self.args[0])


class Closed(Error):
    """The queue, stream or resource was closed; it accepts nothing more."""


class IntegrityError(Error):
    """Stored or received data failed an integrity check (checksum, MAC, Merkle proof)."""


class AccessDenied(Error, PermissionError):
    """A policy refused the subject this action on this resource."""


class BudgetExhausted(Error):
    """A differential-privacy release would spend more than the dataset's remaining budget.

    Python-only (the accountant lives in ``system0.security.privacy``). Attributes: ``dataset``,
    ``requested`` and ``remaining`` (each an ``(epsilon, delta)`` pair). Nothing was released.
    """

    def __init__(
        self,
        message: str,
        dataset: str = "",
        requested: tuple[float, float] = (0.0, 0.0),
        remaining: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.requested = requested
        self.remaining = remaining

    def __str__(self) -> str:
        return str(self.args[0])


class CryptoError(Error):
    """A cryptographic operation failed (wrong key, tampered ciphertext, destroyed key)."""


class NotFound(Error, LookupError):
    """A named thing (dataset, version, tag, stored object) does not exist where it was sought."""


class Unavailable(Error, ConnectionError):
    """A configured backend or service could not be reached; nothing was written to it."""


class InternalError(Error):
    """A bug in system0 itself (a broken invariant); please report it with the message."""


__all__ = [
    "AccessDenied",
    "BudgetExhausted",
    "CardinalityError",
    "CircuitOpen",
    "Closed",
    "ConfigError",
    "CryptoError",
    "DeadlineExceeded",
    "Error",
    "IntegrityError",
    "InternalError",
    "NotFound",
    "Overloaded",
    "Unavailable",
    "ValidationError",
]


class InvalidArgument(Error, ValueError):
    """An argument is out of its documented range or of the wrong kind; the message names it."""
