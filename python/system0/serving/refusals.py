"""Every answer other than 200, as the server writes it: a status, a machine-readable
code, a message that says what to do, the codec's reasons and ``Retry-After``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from system0.errors import (
    AccessDenied,
    CircuitOpen,
    Closed,
    DeadlineExceeded,
    Error,
    NotFound,
    Overloaded,
    ValidationError,
)
from system0.interfaces.inference_engine import InvalidRequest
from system0.serving.admin import Unauthenticated
from system0.serving.wire import BadHeader

__all__ = ["Refused", "refusal"]


class Refused(Exception):
    """An answer other than 200, with everything its JSON body and headers need."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        reasons: Sequence[str] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.reasons, self.retry_after = list(reasons), retry_after

    def body(self) -> bytes:
        doc: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.reasons:
            doc["reasons"] = self.reasons
        if self.retry_after is not None:
            doc["retry_after_s"] = round(self.retry_after, 6)
        return json.dumps(doc).encode()

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            # HTTP's Retry-After is whole seconds: round up, never 0 (that says "now")
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="system0"'
        return headers


def refusal(exc: BaseException) -> Refused:
    """The HTTP answer to an error raised on the way to, or by, the engine; re-raises an
    exception that is not system0's (a bug: the server answers 500)."""
    if isinstance(exc, InvalidRequest):
        return Refused(422, "invalid_request", str(exc), reasons=exc.reasons)
    if isinstance(exc, Overloaded):
        return Refused(429, "overloaded", str(exc), retry_after=max(exc.retry_after, 0.001))
    if isinstance(exc, CircuitOpen):
        return Refused(503, "circuit_open", str(exc), retry_after=max(exc.retry_after, 0.001))
    if isinstance(exc, Closed):
        code = "draining" if type(exc).__name__ == "Draining" else "unavailable"
        return Refused(503, code, str(exc), retry_after=1.0)
    if isinstance(exc, DeadlineExceeded):
        return Refused(504, "deadline_exceeded", str(exc))
    if isinstance(exc, BadHeader):
        return Refused(400, "bad_header", str(exc))
    if isinstance(exc, Unauthenticated):
        return Refused(401, "unauthenticated", str(exc))
    if isinstance(exc, AccessDenied):
        return Refused(403, "forbidden", str(exc))
    if isinstance(exc, NotFound):
        return Refused(404, "not_found", str(exc))
    if isinstance(exc, ValidationError | ValueError):
        return Refused(422, "invalid", str(exc))
    if isinstance(exc, Error):  # a refused rollout: gate, golden set, integrity
        return Refused(409, type(exc).__name__, str(exc))
    raise exc
