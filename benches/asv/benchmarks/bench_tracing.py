"""asv: spans and JSON log records, system0 beside its peers (history over commits).

The same work as benches/gates/gate_tracing.py and gate_logging.py, 1000 operations per call.
"""

from __future__ import annotations

import logging
from typing import Any

N = 1000


class SpanEnterExit:
    def setup(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        from system0.core import tracing

        self.tracing = tracing
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer("asv")

    def time_system0_span_with_parent(self) -> None:
        span = self.tracing.span
        with span("parent"):
            for _ in range(N):
                with span("child"):
                    pass
        self.tracing.drain_spans()

    def time_otel_span_with_parent(self) -> None:
        with self.tracer.start_as_current_span("parent"):
            for _ in range(N):
                with self.tracer.start_as_current_span("child"):
                    pass
        self.exporter.clear()


class JsonLogRecord:
    def setup(self) -> None:
        import orjson
        import structlog

        from system0.core import tracing
        from system0.core.logging import add_trace_context, get_logger

        self.tracing = tracing
        self.devnull = open("/dev/null", "wb")
        self.ours = get_logger("asv", stream=self.devnull)
        self.peer: Any = structlog.wrap_logger(
            structlog.BytesLogger(self.devnull),
            processors=[
                add_trace_context,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        )

    def teardown(self) -> None:
        self.devnull.close()
        self.tracing.drain_spans()

    def time_system0_log(self) -> None:
        with self.tracing.span("request"):
            for i in range(N):
                self.ours.info("request served", player="p1", latency_ms=12.5, attempt=i)

    def time_structlog_orjson_log(self) -> None:
        with self.tracing.span("request"):
            for i in range(N):
                self.peer.info("request served", player="p1", latency_ms=12.5, attempt=i)
