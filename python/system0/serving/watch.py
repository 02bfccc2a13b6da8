"""The watch window after a switch: an error-rate or latency breach rolls the switch back.

:class:`RollbackPolicy` says how long a freshly switched-in version is watched, how many
answers it must give before its rates mean anything, and the thresholds. A :class:`SwitchWatch`
is armed at each switch and fed every answer (or failure) of the new version; ``observe``
returns the breach, once, as a sentence the audit entry keeps. After the window it disarms
and the version is trusted. Time is read from an injected clock (ns), so the window and its
thresholds are tested with a fake clock and no sleeping.

Errors are answers the model did not give: a fallback answer (the model raised, returned NaN,
or its breaker is open) or a failed future other than the caller's own mistake or the load
(``InvalidRequest``, ``Overloaded`` and ``DeadlineExceeded`` say nothing of the version).
Latency is the engine's ``total_ns`` per answer; the breach is the p99 over the window.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from system0 import _core
from system0.errors import ValidationError

__all__ = ["RollbackPolicy", "SwitchWatch"]

Clock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class RollbackPolicy:
    """When a switch rolls itself back.

    ``window_s``: how long after a switch the version is watched (0 disables the watch);
    ``min_requests``: answers needed before a rate is judged; ``max_error_rate``: share of
    errors that breaches; ``max_p99_ms``: p99 latency that breaches (None: not watched);
    ``check_every``: answers between two latency checks (a p99 is a sort).
    """

    window_s: float = 30.0
    min_requests: int = 50
    max_error_rate: float = 0.05
    max_p99_ms: float | None = None
    check_every: int = 64

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window_s) and self.window_s >= 0):
            raise ValidationError(f"window_s must be finite and >= 0, got {self.window_s}")
        if self.min_requests < 1:
            raise ValidationError(f"min_requests must be >= 1, got {self.min_requests}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ValidationError(f"max_error_rate must be in [0, 1], got {self.max_error_rate}")
        if self.max_p99_ms is not None and not (
            math.isfinite(self.max_p99_ms) and self.max_p99_ms > 0
        ):
            raise ValidationError(f"max_p99_ms must be finite and > 0, got {self.max_p99_ms}")
        if self.check_every < 1:
            raise ValidationError(f"check_every must be >= 1, got {self.check_every}")


_MAX_SAMPLES = 1 << 16  # latencies kept per window: a p99 over 65536 answers is exact enough


class SwitchWatch:
    """The watch over one switched-in version. Thread-safe; ``observe`` is cheap."""

    def __init__(self, policy: RollbackPolicy, version: str, clock: Clock = _core.now_ns) -> None:
        self.policy = policy
        self.version = version
        self._clock = clock
        self._until = clock() + int(policy.window_s * 1e9)
        self._lock = threading.Lock()
        self._answers = 0
        self._errors = 0
        self._lat = np.empty(_MAX_SAMPLES, np.int64)
        self._n_lat = 0
        self._since_check = 0
        self.done = policy.window_s == 0  # disarmed: the window passed or a breach fired
        self.breach: str | None = None

    def active(self) -> bool:
        if self.done:
            return False
        if self._clock() >= self._until:
            self.done = True
        return not self.done

    def observe(self, latencies_ns: list[int], errors: int) -> str | None:
        """Count one call's answers (their latencies) and errors; the breach, the first time
        one is found, else None."""
        if not self.active():
            return None
        p = self.policy
        with self._lock:
            if self.done:
                return None
            self._answers += len(latencies_ns) + errors
            self._errors += errors
            k = min(len(latencies_ns), _MAX_SAMPLES - self._n_lat)
            if k:
                self._lat[self._n_lat : self._n_lat + k] = latencies_ns[:k]
                self._n_lat += k
            self._since_check += len(latencies_ns) + errors
            if self._answers < p.min_requests:
                return None
            rate = self._errors / self._answers
            if rate > p.max_error_rate:
                return self._fire(
                    f"error rate {rate:.1%} over {self._answers} answers exceeds "
                    f"{p.max_error_rate:.1%} within {p.window_s:g} s of the switch to "
                    f"{self.version}"
                )
            if p.max_p99_ms is not None and self._n_lat and self._since_check >= p.check_every:
                self._since_check = 0
                p99 = float(np.percentile(self._lat[: self._n_lat], 99)) / 1e6
                if p99 > p.max_p99_ms:
                    return self._fire(
                        f"p99 latency {p99:.2f} ms over {self._n_lat} answers exceeds "
                        f"{p.max_p99_ms:g} ms within {p.window_s:g} s of the switch to "
                        f"{self.version}"
                    )
        return None

    def _fire(self, breach: str) -> str:
        self.done = True
        self.breach = breach
        return breach

    def counts(self) -> tuple[int, int]:
        """``(answers, errors)`` seen so far."""
        with self._lock:
            return self._answers, self._errors
