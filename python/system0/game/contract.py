"""The engine's request contract for the demo policy: a GameState request, or a feature row.

:func:`state_validator` returns the ``validator`` an ``InferenceEngine`` takes. A request is a
GameState (a dict, a :class:`system0.data.models.GameState`, or the JSON or msgpack bytes of
one) or a raw feature row of ``len(FEATURE_NAMES)`` finite numbers. GameState requests go
through the Rust request path (:func:`system0.data.serialization.featurize_requests`): the
codec's rules, its reason codes (``"{code}:{path}"``, e.g. ``greater_than_equal:health``) and
its documented feature layout. No rule of the contract is written here. Every rule broken is
reported at once, so a producer fixes its records in one round; a tick given to
``submit_many`` is validated in one Rust call (:meth:`StateValidator.validate_many`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from system0 import _core
from system0.data.serialization import (
    FEATURE_NAMES,
    RequestError,
    featurize_requests,
    reason_code,
)
from system0.interfaces.inference_engine import InvalidRequest

__all__ = ["N_FEATURES", "StateValidator", "check_state", "state_validator"]

N_FEATURES = len(FEATURE_NAMES)
"""Width of a feature row: the codec's documented layout."""

# what goes to the Rust path; anything else is taken for a raw feature row
_STATE_TYPES = (Mapping, BaseModel, bytes, bytearray, memoryview)


def _reasons(errors: Sequence[RequestError], index: int) -> list[str]:
    return [reason_code(path, code) for i, path, code, _ in errors if i == index]


def _refusal(errors: Sequence[RequestError], index: int, prefix: str = "") -> InvalidRequest:
    reasons = _reasons(errors, index)
    return InvalidRequest(
        f"{prefix}GameState breaks its contract: {', '.join(reasons)}", reasons, index=index
    )


def _feature_row(request: Any, prefix: str = "", index: int | None = None) -> Any:
    try:
        row = np.ascontiguousarray(request, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(
            f"{prefix}request is neither a GameState nor numeric: {exc}",
            ("not_numeric",),
            index=index,
        ) from exc
    if row.shape != (N_FEATURES,):
        raise InvalidRequest(
            f"{prefix}a feature row has {N_FEATURES} values, got shape {row.shape}",
            ("shape",),
            index=index,
        )
    if not math.isfinite(_core.perf_absmax(row)):  # NaN or inf anywhere, in one pass
        raise InvalidRequest(
            f"{prefix}feature row holds NaN or infinity", ("non_finite",), index=index
        )
    return row


def check_state(state: Any) -> list[str]:
    """Reason codes for every rule ``state`` (a GameState request) breaks; empty when it
    keeps the contract."""
    _, _, errors = featurize_requests([state])
    return _reasons(errors, 0)


class StateValidator:
    """``validator(request) -> row`` for one request; ``validate_many(requests)`` for a tick.

    Both raise :class:`InvalidRequest` with the codec's reason codes; ``validate_many`` names
    the first refused request (``index``) and refuses the whole tick.
    """

    def __call__(self, request: Any) -> npt.NDArray[np.float32]:
        if not isinstance(request, _STATE_TYPES):
            row: npt.NDArray[np.float32] = _feature_row(request)
            return row
        one: list[Any] = [request]  # any pydantic model goes to Rust; the rules judge it
        matrix, _, errors = featurize_requests(one)
        if errors:
            raise _refusal(errors, 0)
        out: npt.NDArray[np.float32] = matrix[0]
        return out

    def validate_many(self, requests: Sequence[Any]) -> npt.NDArray[np.float32]:
        """The ``(len(requests), N_FEATURES)`` feature matrix of a tick: every GameState in it
        decoded in one Rust call, any raw feature rows checked beside them."""
        requests = requests if isinstance(requests, list | tuple) else list(requests)
        states = [i for i, r in enumerate(requests) if isinstance(r, _STATE_TYPES)]
        if len(states) == len(requests):
            matrix, _, errors = featurize_requests(requests)
            if errors:
                first = errors[0][0]
                raise _refusal(errors, first, self._prefix(first, errors, len(requests)))
            return matrix
        out = np.empty((len(requests), N_FEATURES), np.float32)
        errors = []
        if states:
            matrix, rows, errors = featurize_requests([requests[i] for i in states])
            out[[states[k] for k in rows]] = matrix
            errors = [(states[i], p, c, m) for i, p, c, m in errors]
        first_state = errors[0][0] if errors else len(requests)
        for i, r in enumerate(requests[:first_state]):
            if not isinstance(r, _STATE_TYPES):
                out[i] = _feature_row(r, f"request {i}: ", index=i)
        if errors:
            raise _refusal(errors, first_state, self._prefix(first_state, errors, len(requests)))
        return out

    @staticmethod
    def _prefix(index: int, errors: Sequence[RequestError], n: int) -> str:
        refused = len({e[0] for e in errors})
        more = f" ({refused} of {n} refused)" if refused > 1 else ""
        return f"request {index}{more}: "


def state_validator() -> StateValidator:
    """A validator for ``InferenceEngine(validator=...)`` over GameState requests and raw
    feature rows (see the module docs)."""
    return StateValidator()
