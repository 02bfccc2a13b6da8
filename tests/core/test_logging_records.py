"""JSON log records: trace context, escaping (hypothesis round trip), timestamps, sinks, and
the standard logging and structlog integrations."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system0.core import tracing
from system0.core.logging import (
    JsonFormatter,
    TraceContextFilter,
    add_trace_context,
    configure_logging,
    format_log_record,
    get_logger,
)
from system0.core.tracing import span


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    tracing.set_sampling(1.0)
    yield
    tracing.drain_spans()


def lines(buf: io.BytesIO | io.StringIO) -> list[dict[str, Any]]:
    raw = buf.getvalue()
    text = raw.decode() if isinstance(raw, bytes) else raw
    return [json.loads(line) for line in text.splitlines()]


def parse_ts(ts: str) -> int:
    """RFC 3339 with 9 fractional digits and Z -> Unix ns."""
    assert len(ts) == 30 and ts.endswith("Z"), ts
    whole = dt.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    return int(whole.timestamp()) * 1_000_000_000 + int(ts[20:29])


def test_a_record_carries_the_current_trace_and_span() -> None:
    buf = io.BytesIO()
    log = get_logger("match", stream=buf)
    log.info("outside")
    with span("request") as req, span("step") as step:
        log.info("inside", player="p1", wait_ms=12)
    with span("other") as other:
        log.warning("elsewhere")
    out, inside, elsewhere = lines(buf)
    assert "trace_id" not in out and "span_id" not in out
    assert inside["trace_id"] == req.trace_id_hex == step.trace_id_hex
    assert inside["span_id"] == step.span_id_hex
    assert inside | {"ts": ""} == {
        "ts": "",
        "level": "info",
        "logger": "match",
        "event": "inside",
        "trace_id": step.trace_id_hex,
        "span_id": step.span_id_hex,
        "player": "p1",
        "wait_ms": 12,
    }
    assert elsewhere["span_id"] == other.span_id_hex and elsewhere["level"] == "warning"


def test_a_remote_parent_is_the_context_of_records() -> None:
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    buf = io.StringIO()
    log = get_logger("srv", stream=buf)
    with tracing.use_context(header):
        log.info("received")
    (rec,) = lines(buf)
    assert rec["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert rec["span_id"] == "00f067aa0ba902b7"


def test_timestamps_are_rfc3339_with_nanoseconds_on_the_wall_clock() -> None:
    buf = io.BytesIO()
    log = get_logger("t", stream=buf)
    t0 = time.time_ns()
    log.info("a")
    log.info("b")
    t1 = time.time_ns()
    a, b = (parse_ts(r["ts"]) for r in lines(buf))
    assert a <= b
    assert t0 - 50_000_000 <= a <= t1 + 50_000_000


def test_levels_filter_and_can_change() -> None:
    buf = io.BytesIO()
    log = get_logger("lv", stream=buf, level="warning")
    log.info("dropped")
    log.error("kept")
    log.set_level("debug")
    log.debug("now kept")
    log.log("critical", "by name")
    assert [r["event"] for r in lines(buf)] == ["kept", "now kept", "by name"]
    assert [r["level"] for r in lines(buf)] == ["error", "debug", "critical"]
    assert log.is_enabled_for("debug") and log.level == 10
    with pytest.raises(ValueError, match="log level"):
        log.set_level("loud")


def test_exception_logs_the_traceback() -> None:
    buf = io.BytesIO()
    log = get_logger("ex", stream=buf)
    try:
        raise ZeroDivisionError("div")
    except ZeroDivisionError:
        log.exception("failed", step=3)
    (rec,) = lines(buf)
    assert rec["level"] == "error" and rec["step"] == 3
    assert "ZeroDivisionError: div" in rec["exception"]


def test_an_fd_sink_gets_whole_lines() -> None:
    with tempfile.TemporaryFile() as f:
        log = get_logger("fd", fd=f.fileno())
        for i in range(100):
            log.info("line", i=i)
        f.seek(0)
        rows = [json.loads(x) for x in f.read().decode().splitlines()]
    assert [r["i"] for r in rows] == list(range(100))
    with pytest.raises(ValueError, match="exactly one sink"):
        get_logger("both", fd=1, stream=io.BytesIO())
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        get_logger("closed", fd=w).info("nowhere")


def test_values_keep_their_json_types() -> None:
    class Custom:
        def __str__(self) -> str:
            return "custom!"

    rec = json.loads(
        format_log_record(
            "info",
            "v",
            "e",
            {
                "big": 2**100,
                "neg": -(2**63),
                "f": 1e300,
                "nan": math.nan,
                "inf": -math.inf,
                "none": None,
                "t": (1, "a"),
                "d": {1: [True, None]},
                "obj": Custom(),
            },
        )
    )
    assert rec["big"] == 2**100 and rec["neg"] == -(2**63)
    assert rec["f"] == 1e300 and isinstance(rec["f"], float)
    assert (rec["nan"], rec["inf"]) == ("NaN", "-Infinity")
    assert rec["none"] is None and rec["t"] == [1, "a"] and rec["d"] == {"1": [True, None]}
    assert rec["obj"] == "custom!"


json_scalars = st.one_of(
    st.text(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
reserved = {"ts", "level", "logger", "event", "trace_id", "span_id"}


@given(
    event=st.text(),
    name=st.text(),
    fields=st.dictionaries(st.text().filter(lambda k: k not in reserved), json_values),
)
def test_any_record_round_trips_through_json_loads(
    event: str, name: str, fields: dict[str, Any]
) -> None:
    line = format_log_record("info", name, event, fields)
    assert line.endswith("\n") and "\n" not in line[:-1]
    rec = json.loads(line)
    assert rec["event"] == event and rec["logger"] == name
    assert {k: rec[k] for k in fields} == fields


def test_stdlib_logging_writes_json_with_trace_context() -> None:
    buf = io.StringIO()
    handler = configure_logging("debug", stream=buf, logger="s0test")
    try:
        log = logging.getLogger("s0test.sub")
        with span("job") as job:
            log.info("processed %d items", 3, extra={"queue": "q1"})
        try:
            raise ValueError("bad")
        except ValueError:
            log.error("failed", exc_info=True)
        processed, failed = lines(buf)
        assert processed["event"] == "processed 3 items"
        assert processed["logger"] == "s0test.sub" and processed["level"] == "info"
        assert processed["queue"] == "q1"
        assert processed["trace_id"] == job.trace_id_hex
        assert processed["span_id"] == job.span_id_hex
        assert "trace_id" not in failed
        assert "ValueError: bad" in failed["exception"]
        # a second call replaces the handler instead of doubling the output
        again = configure_logging("info", stream=buf, logger="s0test")
        assert logging.getLogger("s0test").handlers.count(again) == 1
        assert handler not in logging.getLogger("s0test").handlers
    finally:
        logging.getLogger("s0test").handlers.clear()


def test_trace_context_filter_feeds_classic_formatters() -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(logging.Formatter("%(trace_id)s %(span_id)s %(message)s"))
    log = logging.getLogger("s0classic")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with span("x") as s:
            log.info("hello")
        log.info("bye")
    finally:
        log.removeHandler(handler)
    assert buf.getvalue().splitlines() == [
        f"{s.trace_id_hex} {s.span_id_hex} hello",
        "None None bye",
    ]


def test_json_formatter_location_fields() -> None:
    record = logging.LogRecord("n", logging.INFO, "/x/mod.py", 7, "m", None, None, func="fn")
    rec = json.loads(JsonFormatter(with_location=True).format(record))
    assert (rec["module"], rec["func"], rec["line"]) == ("mod", "fn", 7)


def test_structlog_processor_adds_trace_context() -> None:
    structlog = pytest.importorskip("structlog", reason="structlog is in the dev extra")
    buf = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(buf),
        processors=[add_trace_context, structlog.processors.JSONRenderer()],
    )
    with span("handler") as h:
        log.info("served", status=200)
    log.info("idle")
    served, idle = lines(buf)
    assert served == {
        "event": "served",
        "status": 200,
        "trace_id": h.trace_id_hex,
        "span_id": h.span_id_hex,
    }
    assert idle == {"event": "idle"}


def test_lone_surrogates_are_replaced_not_fatal() -> None:
    buf = io.BytesIO()
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    get_logger("s", stream=buf).info(bad, path=bad)
    with span(bad) as s:
        s.set_attribute("path", bad)
    (rec,) = lines(buf)
    assert rec["event"] == rec["path"]
    (f,) = tracing.drain_spans()
    for text in (rec["event"], f.name, f.attributes["path"]):
        assert isinstance(text, str) and text.startswith("caf\ufffd")
        text.encode("utf-8")  # no surrogate left
