"""What crosses the wire on the infer route: request bodies in, deadlines, answers out.

Bodies are never parsed by a pydantic model: the Rust codec reads them. A single GameState
(a JSON object, or a msgpack map) is handed to the service as it came. A tick (a JSON
array, NDJSON, or an Arrow IPC stream of GameState rows) becomes one body per state:
a JSON array is decoded and validated whole by the codec (``decode_game_states``), and its
valid rows come back as canonical NDJSON lines, which are exactly the per-state bodies the
service takes; a refused row refuses the tick with ``"{index}:{code}:{path}"`` reasons.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from system0.data.serialization import decode_game_states, reason_code
from system0.errors import ValidationError
from system0.interfaces.inference_engine import InvalidRequest
from system0.serving.service import ServedAnswer

__all__ = [
    "ARROW_STREAM",
    "MSGPACK",
    "NDJSON",
    "BadHeader",
    "Limits",
    "answer_json",
    "budget_from_headers",
    "split_body",
]

MSGPACK = "application/msgpack"
NDJSON = "application/x-ndjson"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEADLINE_HEADER = "x-request-deadline-ms"
GRPC_TIMEOUT = "grpc-timeout"
# gRPC's timeout: at most 8 digits and a unit (hours to nanoseconds)
_GRPC = re.compile(r"^([0-9]{1,8})([HMSmun])$")
_GRPC_UNIT = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


_STATE_BYTES = 1024  # a bound on one GameState's JSON size, for the tick limit


class BadHeader(ValidationError):
    """A request header could not be read (answered 400)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The server's limits: ``max_body_bytes`` (413 above it, before the body is read
    whole), ``max_tick`` (states in one request), ``default_budget_s`` (when the request
    names no deadline), ``max_budget_s`` (a larger deadline is cut to it) and
    ``min_budget_s`` (a smaller one is a bad header: no answer can cross the network and a
    batching window in less, so it could only ever be refused)."""

    max_body_bytes: int = 1 << 20
    max_tick: int = 4096
    default_budget_s: float = 0.05
    max_budget_s: float = 10.0
    min_budget_s: float = 0.001

    @property
    def tick_limit(self) -> int:
        """The most states one request may hold: ``max_tick``, and no more than the body
        limit holds at 1 KiB a state (the largest encoding of a valid GameState is well
        under that), so that every tick the spec allows also fits the body limit."""
        return max(1, min(self.max_tick, self.max_body_bytes // _STATE_BYTES))

    def __post_init__(self) -> None:
        if not 1 <= self.max_body_bytes <= 1 << 30:
            raise ValidationError(
                f"max_body_bytes must be in [1, 2**30], got {self.max_body_bytes}"
            )
        if not 1 <= self.max_tick <= 65_536:
            raise ValidationError(f"max_tick must be in [1, 65536], got {self.max_tick}")
        if not 0 < self.min_budget_s <= self.default_budget_s <= self.max_budget_s <= 3600:
            raise ValidationError(
                "budgets must satisfy 0 < min_budget_s <= default_budget_s <= max_budget_s <= "
                f"3600, got {self.min_budget_s}, {self.default_budget_s} and {self.max_budget_s}"
            )


def budget_from_headers(headers: Mapping[str, str], limits: Limits) -> float:
    """The request's budget in seconds: ``X-Request-Deadline-Ms`` (milliseconds) or
    ``grpc-timeout`` (``100m``, ``2S``...), else the default; cut to
    ``limits.max_budget_s``, and refused below ``limits.min_budget_s``."""
    raw = headers.get(DEADLINE_HEADER)
    name = "X-Request-Deadline-Ms"
    if raw is not None:
        try:
            seconds = float(raw) / 1e3
        except ValueError:
            raise BadHeader(f"{name} must be a number of milliseconds, got {raw!r}") from None
        if not math.isfinite(seconds):
            raise BadHeader(f"{name} must be a finite number of milliseconds, got {raw!r}")
    elif (raw := headers.get(GRPC_TIMEOUT)) is not None:
        name = "grpc-timeout"
        m = _GRPC.match(raw.strip())
        if m is None:
            raise BadHeader(
                f"grpc-timeout must be 1 to 8 digits and a unit H, M, S, m, u or n (e.g. 100m), "
                f"got {raw!r}"
            )
        seconds = int(m.group(1)) * _GRPC_UNIT[m.group(2)]
    else:
        return limits.default_budget_s
    if seconds < limits.min_budget_s:
        raise BadHeader(
            f"{name} {raw!r} is under the server's least budget of "
            f"{limits.min_budget_s * 1e3:g} ms: such a request could never be answered in time"
        )
    return min(seconds, limits.max_budget_s)


def _media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def split_body(body: bytes, content_type: str | None, limits: Limits) -> tuple[list[bytes], bool]:
    """The per-state bodies of a request and whether it was a tick (answered as a list).

    Raises :class:`InvalidRequest` (422) with the codec's reason codes, or naming the
    framing that is wrong."""
    media = _media_type(content_type)
    if media == MSGPACK:
        return [body], False
    if media == ARROW_STREAM:
        return _arrow_rows(body, limits), True
    if media == NDJSON:
        items = [line for line in body.split(b"\n") if line.strip()]
        _check_tick(len(items), limits)
        return items, True
    if media not in ("application/json", "text/json"):
        raise InvalidRequest(
            f"unsupported content type {media!r}; send application/json (a GameState or an "
            f"array of them), {NDJSON}, {MSGPACK} or {ARROW_STREAM}",
            ("unsupported_media_type",),
        )
    head = body.lstrip()[:1]
    if head == b"[":
        return _json_tick(body, limits), True
    if head == b"{":
        return [body], False
    raise InvalidRequest(
        "the body must be a GameState JSON object or a JSON array of them",
        ("not_a_game_state",),
    )


def _check_tick(n: int, limits: Limits) -> None:
    if n == 0:
        raise InvalidRequest("the tick holds no GameState; send at least one", ("empty_tick",))
    if n > limits.tick_limit:
        raise InvalidRequest(
            f"the tick holds {n} states, more than the limit {limits.tick_limit}; split it",
            ("tick_too_large",),
        )


def _json_tick(body: bytes, limits: Limits) -> list[bytes]:
    try:
        decoded = decode_game_states(body)
    except (ValueError, ValidationError) as exc:
        raise InvalidRequest(
            f"the tick is not a JSON array of GameStates: {exc}", ("json",)
        ) from None
    errors = decoded.errors
    if errors:
        reasons = [f"{i}:{reason_code(path, code)}" for i, path, code, _ in errors]
        first = errors[0][0]
        raise InvalidRequest(
            f"the tick was refused whole: {len({e[0] for e in errors})} of its "
            f"{decoded.total} states break the contract ({', '.join(reasons[:5])})",
            reasons,
            index=first,
        )
    _check_tick(decoded.num_rows, limits)
    return [line for line in decoded.to_json(ndjson=True).split(b"\n") if line]


def _arrow_rows(body: bytes, limits: Limits) -> list[bytes]:
    """Arrow IPC stream of GameState rows (the codec's column layout) as per-state JSON."""
    from system0.data.serialization import from_ipc_bytes

    try:
        table = from_ipc_bytes(body)
    except ValidationError as exc:
        raise InvalidRequest(str(exc), ("arrow_ipc",)) from None
    _check_tick(table.num_rows, limits)
    try:
        rows = table.to_pylist()
        return [json.dumps(_nested(r), default=_json_default).encode() for r in rows]
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidRequest(
            f"the Arrow stream is not in the GameState layout: {exc}", ("arrow_layout",)
        ) from None


def _nested(row: dict[str, Any]) -> dict[str, Any]:
    """The codec's flat columns (position_x, cooldown_q...) back into a GameState."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith("position_"):
            out.setdefault("position", {})[key.removeprefix("position_")] = value
        elif key.startswith("cooldown_"):
            out.setdefault("cooldowns", {})[key.removeprefix("cooldown_")] = value
        elif value is not None:
            out[key] = value
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not a GameState value")


def _answer(model: str, a: ServedAnswer) -> dict[str, Any]:
    return {
        "model": model,
        "version": a.version,
        "action": a.action,
        "outputs": a.outputs.tolist(),
        "fallback": a.fallback,
        "reason": a.reason,
        "guard": a.guard,
        "batch_id": a.batch_id,
        "row": a.row,
        "queue_wait_ns": a.queue_wait_ns,
        "model_ns": a.model_ns,
        "total_ns": a.total_ns,
    }


def answer_json(model: str, answers: Sequence[ServedAnswer], tick: bool) -> bytes:
    """The response body: one answer object, or ``{"model", "answers": [...]}`` for a tick."""
    if not tick:
        return json.dumps(_answer(model, answers[0]), separators=(",", ":")).encode()
    doc = {"model": model, "answers": [_answer(model, a) for a in answers]}
    return json.dumps(doc, separators=(",", ":")).encode()
