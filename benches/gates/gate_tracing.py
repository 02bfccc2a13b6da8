"""Gate: span enter+exit with a parent, system0 vs the OpenTelemetry SDK.

Both sides do the same work per round: with a parent span active, open and close `n` child
spans, then hand the finished spans to their consumer. system0 records them into its Rust
buffer and the round ends with `drain_spans()` (the spans reach Python as objects, as an
exporter would take them). The OpenTelemetry peer is the SDK `TracerProvider` with the
default (always-on) sampler, `start_as_current_span`, and a `SimpleSpanProcessor` feeding an
`InMemorySpanExporter` (export on end, no background thread competing for the 2 cores), its
list cleared at the end of each round. A second line measures the peer with a
`BatchSpanProcessor` instead, for context.
"""

from __future__ import annotations

from collections.abc import Callable

from ratio import Gate

from system0.core import tracing


def _ours(n: int) -> None:
    span = tracing.span
    with span("parent"):
        for _ in range(n):
            with span("child"):
                pass
    tracing.drain_spans()


def _otel(batch: bool) -> Callable[[int], None]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    if batch:
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=65_536, schedule_delay_millis=50)
        )
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def peer(n: int) -> None:
        with tracer.start_as_current_span("parent"):
            for _ in range(n):
                with tracer.start_as_current_span("child"):
                    pass
        if batch:
            provider.force_flush()
        exporter.clear()

    return peer


def gates() -> list[Gate]:
    return [
        Gate(
            name="span enter+exit with a parent",
            ours=_ours,
            peer=_otel(batch=False),
            peer_name="OTel SDK start_as_current_span, SimpleSpanProcessor+InMemory",
            gate=10.0,
            goal=25.0,
            n=20_000,
            rounds=9,
        ),
        Gate(
            name="span enter+exit with a parent (OTel batch proc.)",
            ours=_ours,
            peer=_otel(batch=True),
            peer_name="OTel SDK start_as_current_span, BatchSpanProcessor+InMemory",
            gate=10.0,
            goal=25.0,
            n=20_000,
            rounds=9,
        ),
    ]
