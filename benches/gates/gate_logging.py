"""Gate: one JSON log record with trace context, to /dev/null, system0 vs structlog+orjson.

Both loggers write the same record (timestamp, level, event, trace_id, span_id and three
fields) inside an active span, to the same buffered binary file opened on /dev/null.
system0: `Logger(...).info(...)`, the record built in Rust. Peer: structlog in its fastest
documented setup: `make_filtering_bound_logger`, the processors `add_trace_context` (system0's,
reading the same span), `add_log_level`, `TimeStamper(fmt="iso", utc=True)`, and
`JSONRenderer(serializer=orjson.dumps)` into a `BytesLogger`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ratio import Gate

from system0.core import tracing
from system0.core.logging import add_trace_context, get_logger

_devnull = open("/dev/null", "wb")


def _ours(n: int) -> None:
    log = get_logger("bench", stream=_devnull)
    with tracing.span("request"):
        for i in range(n):
            log.info("request served", player="p1", latency_ms=12.5, attempt=i)
    tracing.drain_spans()


def _structlog() -> Callable[[int], None]:
    import orjson
    import structlog

    log = structlog.wrap_logger(
        structlog.BytesLogger(_devnull),
        processors=[
            add_trace_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )

    def peer(n: int) -> None:
        with tracing.span("request"):
            for i in range(n):
                log.info("request served", player="p1", latency_ms=12.5, attempt=i)
        tracing.drain_spans()

    return peer


def gates() -> list[Gate]:
    return [
        Gate(
            name="JSON log record with trace context, /dev/null",
            ours=_ours,
            peer=_structlog(),
            peer_name="structlog + orjson JSONRenderer, BytesLogger",
            gate=2.0,
            goal=3.0,
            n=20_000,
            rounds=9,
        ),
    ]
