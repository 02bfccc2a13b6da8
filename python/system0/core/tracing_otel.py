"""Hand system0 spans to OpenTelemetry: any opentelemetry-sdk ``SpanExporter`` (the OTLP
exporter, the console exporter, the SDK's ``InMemorySpanExporter``) receives them as SDK
``ReadableSpan`` objects, converted faithfully: the same 128-bit trace and 64-bit span ids,
the parent link (marked remote when it came from a ``traceparent``), Unix-ns start and end
times, attributes, events and status.

Needs the ``otel`` extra (``pip install 'system0[otel]'``). Spans are recorded by system0 and
only converted here, at export time, so the OpenTelemetry SDK costs nothing on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from system0._core import FinishedSpan, drain_spans
from system0.errors import InvalidArgument

try:
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "system0.core.tracing_otel needs opentelemetry-sdk; install it with "
        "pip install 'system0[otel]'"
    ) from exc

_SAMPLED = otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED)
_STATUS = {
    "unset": otel_trace.StatusCode.UNSET,
    "ok": otel_trace.StatusCode.OK,
    "error": otel_trace.StatusCode.ERROR,
}


def _scope() -> InstrumentationScope:
    from system0 import _core

    return InstrumentationScope("system0", _core.__version__)


def to_otel(spans: Iterable[FinishedSpan], resource: Resource | None = None) -> list[ReadableSpan]:
    """Converts finished spans to OpenTelemetry SDK ``ReadableSpan`` objects."""
    res = resource if resource is not None else Resource.create()
    scope = _scope()
    out: list[ReadableSpan] = []
    for s in spans:
        ctx = otel_trace.SpanContext(s.trace_id, s.span_id, is_remote=False, trace_flags=_SAMPLED)
        parent_id = s.parent_id
        parent = (
            otel_trace.SpanContext(
                s.trace_id, parent_id, is_remote=s.parent_remote, trace_flags=_SAMPLED
            )
            if parent_id is not None
            else None
        )
        events = [Event(name, attrs, timestamp=ts) for name, ts, attrs in s.events]
        status = otel_trace.Status(
            _STATUS[s.status], s.status_message if s.status == "error" else None
        )
        out.append(
            ReadableSpan(
                name=s.name,
                context=ctx,
                parent=parent,
                resource=res,
                attributes=s.attributes,
                events=events,
                kind=otel_trace.SpanKind.INTERNAL,
                status=status,
                start_time=s.start_unix_ns,
                end_time=s.end_unix_ns,
                instrumentation_scope=scope,
            )
        )
    return out


def export_spans(
    exporter: SpanExporter,
    spans: Sequence[FinishedSpan] | None = None,
    resource: Resource | None = None,
) -> SpanExportResult:
    """Exports ``spans`` (drained from the collector when None) through ``exporter``."""
    batch = drain_spans() if spans is None else spans
    if not batch:
        return SpanExportResult.SUCCESS
    return exporter.export(to_otel(batch, resource))


class OTelSpanBridge:
    """Drains system0's span buffer into an OpenTelemetry exporter, in batches.

    Call :meth:`export` periodically (a timer, the end of a request batch, shutdown); each
    call drains what is buffered now, ``max_batch`` spans per ``exporter.export`` call.
    """

    def __init__(
        self, exporter: SpanExporter, resource: Resource | None = None, max_batch: int = 512
    ) -> None:
        if max_batch < 1:
            raise InvalidArgument(f"max_batch must be at least 1, got {max_batch}")
        self.exporter = exporter
        self.resource = resource if resource is not None else Resource.create()
        self.max_batch = max_batch
        self.failed_batches = 0

    def export(self) -> int:
        """Exports everything buffered now; returns the number of spans handed over.

        A batch the exporter reports as failed is counted in ``failed_batches`` (and not
        retried: OpenTelemetry exporters retry internally where it makes sense).
        """
        total = 0
        while batch := drain_spans(self.max_batch):
            if self.exporter.export(to_otel(batch, self.resource)) != SpanExportResult.SUCCESS:
                self.failed_batches += 1
            total += len(batch)
            if len(batch) < self.max_batch:
                break
        return total

    def shutdown(self) -> None:
        self.export()
        self.exporter.shutdown()

    def __enter__(self) -> OTelSpanBridge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


__all__ = ["OTelSpanBridge", "export_spans", "to_otel"]
