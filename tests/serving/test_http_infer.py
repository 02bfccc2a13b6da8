"""The infer route on a real server: bodies decoded by the codec, ticks, the bad-input rows
(422 with reason codes, 413 before the body is read whole, 400 for bad headers, 404)."""

from __future__ import annotations

import json
import socket

import msgspec
import numpy as np
import pyarrow as pa

from system0.data.serialization import decode_game_states, ipc_bytes
from system0.game.contract import state_validator
from system0.serving.wire import ARROW_STREAM

from .serving_fixtures import Served, body, states


def _expected(state: dict[str, object]) -> np.ndarray:
    """What the policy answers for ``state`` in process (the server must agree)."""
    from system0.game.policy import load_policy

    return np.asarray(load_policy().infer(state_validator()(state)[None, :]))[0]


def test_one_state_is_answered_by_the_model(served: Served) -> None:
    s = states(1)[0]
    r = served.infer(body(s))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model"] == "policy" and doc["version"] == served.service.version
    assert doc["fallback"] is False and doc["guard"] is None
    want = _expected(s)
    assert np.array_equal(np.asarray(doc["outputs"], np.float32), want)
    assert doc["action"] == int(want.argmax())
    assert doc["total_ns"] >= doc["model_ns"] > 0


def test_a_tick_is_answered_in_order(served: Served) -> None:
    tick = states(6)
    for content, ctype in (
        (body(tick), "application/json"),
        (b"\n".join(json.dumps(s).encode() for s in tick), "application/x-ndjson"),
        (
            ipc_bytes(pa.record_batch(decode_game_states(body(tick)))),
            ARROW_STREAM,
        ),
    ):
        r = served.infer(content, **{"content-type": ctype})
        assert r.status_code == 200, (ctype, r.text)
        answers = r.json()["answers"]
        assert [a["action"] for a in answers] == [int(_expected(s).argmax()) for s in tick]
        assert {a["version"] for a in answers} == {served.service.version}


def test_msgpack_state(served: Served) -> None:
    s = states(1)[0]
    r = served.infer(msgspec.msgpack.encode(s), **{"content-type": "application/msgpack"})
    assert r.status_code == 200, r.text
    assert r.json()["action"] == int(_expected(s).argmax())


def test_a_broken_state_gets_the_codecs_reason_codes(served: Served) -> None:
    s = states(1)[0]
    s["health"] = -1.0
    del s["mana"]
    r = served.infer(body(s))
    assert r.status_code == 422
    assert set(r.json()["reasons"]) == {"greater_than_equal:health", "missing:mana"}


def test_a_tick_with_one_bad_state_is_refused_whole(served: Served) -> None:
    tick = states(4)
    tick[2]["position"]["x"] = 7.0
    before = served.service.engine.stats.submitted
    r = served.infer(body(tick))
    assert r.status_code == 422
    assert r.json()["reasons"] == ["2:less_than_equal:position.x"]
    assert served.service.engine.stats.submitted == before  # nothing of it was queued


def test_malformed_bodies_are_422(served: Served) -> None:
    for content, reason in (
        (b"not json", "not_a_game_state"),
        (b"[]", "empty_tick"),
        (b"{", "json_invalid"),
        (b"[1]", "0:model_type"),
    ):
        r = served.infer(content)
        assert r.status_code == 422, (content, r.text)
        assert reason in r.json()["reasons"], (content, r.json())
    r = served.infer(b"<xml/>", **{"content-type": "application/xml"})
    assert r.status_code == 422 and r.json()["reasons"] == ["unsupported_media_type"]


def test_a_body_over_the_limit_is_413_before_it_is_read(served: Served) -> None:
    # declared too large: refused from the header, while the client has sent nothing of it
    host, port = served.server.host, served.server.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/models/policy/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        )
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:100]
    # streamed without a length: cut off as soon as the limit is passed
    chunks = (b"[" + b" " * 8192 for _ in range(100))
    r = served.client.post("/v1/models/policy/infer", content=chunks)
    assert r.status_code == 413
    assert "limit of 65536 bytes" in r.json()["message"]


def test_unknown_model_and_bad_headers(served: Served) -> None:
    r = served.client.post("/v1/models/nope/infer", content=body(states(1)[0]))
    assert r.status_code == 404 and "policy" in r.json()["message"]
    for name, value in (
        ("x-request-deadline-ms", "soon"),
        ("x-request-deadline-ms", "-5"),
        ("grpc-timeout", "100x"),
        ("grpc-timeout", "0m"),
        ("grpc-timeout", "999u"),  # under the least budget (1 ms)
        ("x-request-deadline-ms", "0.5"),
    ):
        r = served.infer(body(states(1)[0]), **{name: value})
        assert r.status_code == 400, (name, value)
        assert r.json()["error"] == "bad_header"
