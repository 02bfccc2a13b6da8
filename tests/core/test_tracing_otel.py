"""The OpenTelemetry bridge hands spans to an SDK exporter with ids, parents, times,
attributes, events and status intact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from system0.core import tracing
from system0.core.tracing import span

otel_trace = pytest.importorskip("opentelemetry.trace", reason="needs the otel extra")
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from system0.core.tracing_otel import OTelSpanBridge, export_spans  # noqa: E402

REMOTE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    tracing.set_sampling(1.0)
    tracing.drain_spans()
    yield
    tracing.drain_spans()


def test_spans_reach_an_otel_exporter_faithfully() -> None:
    with span("request", parent=REMOTE, route="/act") as req:
        with span("infer", batch=8, temperature=0.5, cached=False) as inf:
            inf.add_event("queue.wait", ms=3)
        with pytest.raises(ValueError), span("validate"):
            raise ValueError("bad state")
    mine = {s.name: s for s in tracing.drain_spans()}
    exporter = InMemorySpanExporter()
    resource = Resource.create({"service.name": "policy-server"})
    bridge = OTelSpanBridge(exporter, resource=resource, max_batch=2)
    assert export_spans(exporter, list(mine.values()), resource) == SpanExportResult.SUCCESS
    got = {s.name: s for s in exporter.get_finished_spans()}
    assert set(got) == {"request", "infer", "validate"}

    r, i, v = got["request"], got["infer"], got["validate"]
    assert r.context.trace_id == req.trace_id and r.context.span_id == req.span_id
    assert r.parent is not None and r.parent.is_remote
    assert r.parent.span_id == 0x00F067AA0BA902B7
    assert i.parent is not None and not i.parent.is_remote
    assert i.parent.span_id == req.span_id and i.context.trace_id == req.trace_id
    assert dict(r.attributes or {}) == {"route": "/act"}
    assert dict(i.attributes or {}) == {"batch": 8, "temperature": 0.5, "cached": False}
    assert (i.start_time, i.end_time) == (mine["infer"].start_unix_ns, mine["infer"].end_unix_ns)
    assert [e.name for e in i.events] == ["queue.wait"]
    assert dict(i.events[0].attributes or {}) == {"ms": 3}
    assert i.status.status_code == otel_trace.StatusCode.UNSET
    assert v.status.status_code == otel_trace.StatusCode.ERROR
    assert v.status.description == "ValueError: bad state"
    assert v.events[0].name == "exception"
    assert r.resource.attributes["service.name"] == "policy-server"
    assert r.instrumentation_scope is not None and r.instrumentation_scope.name == "system0"
    assert r.context.trace_flags.sampled
    assert bridge.export() == 0  # nothing left buffered


def test_the_bridge_drains_in_batches() -> None:
    for i in range(7):
        with span(f"s{i}"):
            pass
    exporter = InMemorySpanExporter()
    with OTelSpanBridge(exporter, max_batch=3) as bridge:
        assert bridge.export() == 7
        assert bridge.failed_batches == 0
    assert [s.name for s in exporter.get_finished_spans()] == [f"s{i}" for i in range(7)]
    with pytest.raises(ValueError, match="max_batch"):
        OTelSpanBridge(exporter, max_batch=0)
