"""The hand-written parts of the served OpenAPI spec.

The infer route reads its body raw (the Rust codec decodes it, no pydantic body model), so
FastAPI cannot derive its request schema: it is written here, from the ``GameState`` model's
JSON schema (the wire contract the codec enforces), with the answer and error shapes.
"""

from __future__ import annotations

from typing import Any

from system0.serving.wire import ARROW_STREAM, MSGPACK, NDJSON

__all__ = ["ANSWER", "ERROR", "game_state_schemas", "infer_openapi", "responses"]

_REF = "#/components/schemas/{model}"

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


def game_state_schemas() -> dict[str, Any]:
    """``GameState`` and the schemas it refers to, for the spec's components."""
    from system0.data.models import GameState

    doc = GameState.model_json_schema(ref_template=_REF)
    defs = doc.pop("$defs", {})
    return {"GameState": doc, **defs, "Answer": ANSWER, "TickAnswer": TICK_ANSWER, "Error": ERROR}


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


def infer_openapi() -> dict[str, Any]:
    """``openapi_extra`` of the infer route: its bodies and its deadline header."""
    state = {"$ref": "#/components/schemas/GameState"}
    return {
        "parameters": [
            {
                "name": "X-Request-Deadline-Ms",
                "in": "header",
                "required": False,
                "description": (
                    "the request's budget in milliseconds; past it the request is never run. "
                    "grpc-timeout style ('100m', '2S') is read too"
                ),
                "schema": {"type": "number", "minimum": 1, "maximum": 600000},
            }
        ],
        "requestBody": {
            "required": True,
            "description": (
                "one GameState, or a tick of them; decoded and validated by the Rust codec"
            ),
            "content": {
                "application/json": {
                    "schema": {"oneOf": [state, {"type": "array", "items": state}]}
                },
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
