"""What one suite of the release gate found: its checks, its figures, and whether it crashed.

A suite is a function of the candidate model that returns a :class:`SuiteResult`. It is run
through :func:`run_suite`, which turns an exception into a *failed* result carrying the error
(a suite that crashes has not shown the model is fit to ship, so it can never count as a pass
or be skipped), and a suite that made no check at all fails too: an empty suite proves nothing.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Check", "SuiteResult", "jsonable", "run_suite"]


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict inside a suite; ``detail`` is what a reader needs to see why (figures side
    by side for a threshold, the first failing cases for a corpus)."""

    name: str
    passed: bool
    detail: str

    def __post_init__(self) -> None:
        # numpy comparisons give np.bool_, which is not JSON: keep the verdict a plain bool
        object.__setattr__(self, "passed", bool(self.passed))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(slots=True)
class SuiteResult:
    """A suite's checks and figures (``data``: JSON values the report plots); ``error`` is set
    when the suite crashed."""

    name: str
    checks: list[Check]
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line: the verdict and, on a failure, what failed."""
        if self.error is not None:
            return f"{self.name}: FAILED (crashed: {self.error.splitlines()[0]})"
        if not self.checks:
            return f"{self.name}: FAILED (the suite made no check)"
        if self.passed:
            return f"{self.name}: passed ({len(self.checks)} checks)"
        names = ", ".join(c.name for c in self.failed_checks)
        return f"{self.name}: FAILED ({names})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "summary": self.summary(),
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "checks": [c.to_dict() for c in self.checks],
            "data": jsonable(self.data),
        }

    @staticmethod
    def from_dict(doc: Mapping[str, Any]) -> SuiteResult:
        checks = [Check(str(c["name"]), bool(c["passed"]), str(c["detail"])) for c in doc["checks"]]
        error = doc.get("error")
        return SuiteResult(
            str(doc["name"]),
            checks,
            dict(doc.get("data") or {}),
            float(doc.get("seconds", 0.0)),
            None if error is None else str(error),
        )


def run_suite(name: str, suite: Callable[[], SuiteResult]) -> SuiteResult:
    """Run one suite, timing it; an exception becomes a failed result naming the error."""
    start = time.perf_counter()
    try:
        result = suite()
    except Exception as exc:
        tail = "".join(traceback.format_exception(exc)[-3:]).strip()
        result = SuiteResult(name, [], error=f"{type(exc).__name__}: {exc}\n{tail}")
    result.name = name
    result.seconds = time.perf_counter() - start
    return result


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data for the signed report: numpy scalars and arrays become
    numbers and lists, and a non-finite float becomes None (canonical JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, str | bytes):
        return value if isinstance(value, str) else value.hex()
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, Sequence):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise TypeError(f"cannot put a {type(value).__name__} into a gate report")
