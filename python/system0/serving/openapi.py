"""The hand-written parts of the served OpenAPI spec.

The infer route reads its body raw (the Rust codec decodes it, no pydantic body model), so
FastAPI cannot derive its request schema: it is written here, from the ``GameState`` model's
JSON schema (the wire contract the codec enforces), with the answer and error shapes.
"""

from __future__ import annotations

from typing import Any

from system0.serving.wire import ARROW_STREAM, MSGPACK, NDJSON, Limits

__all__ = ["ANSWER", "ERROR", "game_state_schemas", "infer_openapi", "responses"]

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable code"},
        "message": {"type": "string", "description": "what was wrong and what to do"},
        "reasons": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the codec's reason codes, '{code}:{path}' ('{index}:...' in a tick)",
        },
        "retry_after_s": {"type": "number"},
    },
}

ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["model", "version", "action", "outputs", "fallback"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "string", "description": "the version that answered"},
        "action": {"type": "integer"},
        "outputs": {"type": "array", "items": {"type": "number"}},
        "fallback": {"type": "boolean"},
        "reason": {"type": ["string", "null"]},
        "guard": {"type": ["string", "null"], "description": "the guard rule that vetoed"},
        "batch_id": {"type": "integer"},
        "row": {"type": "integer"},
        "queue_wait_ns": {"type": "integer"},
        "model_ns": {"type": "integer"},
        "total_ns": {"type": "integer"},
    },
}

TICK_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["model", "answers"],
    "properties": {
        "model": {"type": "string"},
        "answers": {"type": "array", "items": {"$ref": "#/components/schemas/Answer"}},
    },
}


# RFC 3339 with an offset, microseconds at most; years 2001-2099, so that no offset moves
# a documented timestamp out of the contract's [2000-01-01, 2100-01-01) UTC
_TIMESTAMP = (
    r"^20(0[1-9]|[1-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3])"
    r":[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


def _number(bounds: tuple[float, float]) -> dict[str, Any]:
    return {"type": "number", "minimum": bounds[0], "maximum": bounds[1]}


def game_state_schemas() -> dict[str, Any]:
    """``GameState`` as the Rust codec accepts it, written from the wire contract itself
    (``_core.wire_contract()``: its fields, ranges, champion rule, item vocabulary), and
    the answer and error shapes, for the spec's components."""
    from system0 import _core

    c = _core.wire_contract()
    ranges = c.ranges
    game_state = {
        "type": "object",
        "additionalProperties": False,
        "description": "one observation of one champion; refused with the codec's reason "
        "codes when it breaks the contract",
        "required": [f for f in c.game_state_fields if f not in c.game_state_optional],
        "properties": {
            "schema_version": {"type": "integer", "enum": [c.schema_version]},
            "timestamp": {"type": "string", "pattern": _TIMESTAMP},
            "champion": {
                "type": "string",
                "pattern": f"^[A-Za-z0-9 '._-]{{1,{c.max_champion}}}$",
            },
            "position": {
                "type": "object",
                "additionalProperties": False,
                "required": list(c.position_fields),
                "properties": {p: _number(ranges[f"position.{p}"]) for p in c.position_fields},
            },
            "health": _number(ranges["health"]),
            "mana": _number(ranges["mana"]),
            "cooldowns": {
                "type": "object",
                "additionalProperties": False,
                "required": list(c.ability_slots),
                "properties": {s: _number(ranges[f"cooldowns.{s}"]) for s in c.ability_slots},
            },
            "inventory": {
                "type": "array",
                "maxItems": c.max_inventory,
                "items": {"type": "string", "enum": list(c.item_vocabulary)},
            },
            "vision_score": _number(ranges["vision_score"]),
            "gold_advantage": _number(ranges["gold_advantage"]),
        },
    }
    return {"GameState": game_state, "Answer": ANSWER, "TickAnswer": TICK_ANSWER, "Error": ERROR}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a route."""
    text = {
        400: "a header could not be read",
        401: "no admin token",
        403: "a forged, expired or foreign token, or a subject the policy denies",
        404: "no such model or version",
        409: "the operation does not fit the model's state",
        413: "the body is over the size limit (refused before it is read whole)",
        422: "the body breaks the GameState contract (the codec's reason codes)",
        429: "the queue is full or the budget cannot be met: retry after Retry-After",
        503: "the breaker is open, or the model is draining or not loaded",
        504: "the deadline passed before the request could run; it was not run",
    }
    return {c: _error(text[c]) for c in codes}


def infer_openapi(limits: Limits) -> dict[str, Any]:
    """``openapi_extra`` of the infer route: its bodies and its deadline header."""
    state = {"$ref": "#/components/schemas/GameState"}
    tick = {"type": "array", "items": state, "minItems": 1, "maxItems": limits.tick_limit}
    return {
        "parameters": [
            {
                "name": "X-Request-Deadline-Ms",
                "in": "header",
                "required": False,
                "description": (
                    "the request's budget in milliseconds; past it the request is never run; "
                    f"at least {limits.min_budget_s * 1e3:g}, and cut to "
                    f"{limits.max_budget_s * 1e3:g}. A grpc-timeout header ('100m', '2S') is "
                    "read when this one is absent"
                ),
                "schema": {"type": "number", "minimum": limits.min_budget_s * 1e3},
            }
        ],
        "requestBody": {
            "required": True,
            "description": (
                "one GameState, or a tick of them; decoded and validated by the Rust codec"
            ),
            "content": {
                "application/json": {"schema": {"oneOf": [state, tick]}},
                NDJSON: {"schema": {"type": "string", "description": "one GameState a line"}},
                MSGPACK: {"schema": {"type": "string", "format": "binary"}},
                ARROW_STREAM: {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "an Arrow IPC stream in the codec's GameState layout",
                    }
                },
            },
        },
    }
