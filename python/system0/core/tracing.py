"""Spans with causality: who called whom, for how long, and how it ended.

A span is entered and exited in Rust: ``with span("infer", model="policy"):`` costs a few
hundred nanoseconds. Each span has a 128-bit trace id shared by its whole trace, a 64-bit span
id, and its parent's span id. The current span lives in a :mod:`contextvars` variable, so:

* nested ``with`` blocks and decorated calls become parent and child;
* an asyncio task started inside a span is that span's child (tasks copy the context);
* a thread sees the span only if its work runs in a copied context: use :func:`wrap`
  (``Thread(target=wrap(fn))``, ``executor.submit(wrap(fn), ...)``) or
  ``asyncio.to_thread`` (which copies the context itself);
* another process continues the trace from a W3C ``traceparent`` header: :func:`inject` on the
  sending side, ``span(..., parent=header)`` or :func:`use_context` on the receiving side.

A span takes its parent and ids when it is created (``span(...)``), not when entered.

Sampling keeps or drops whole traces: a root span decides from its trace id
(:func:`set_sampling`), children follow their parent's decision, and a remote parent's
``sampled`` flag is respected. An unsampled span still carries and propagates its ids, but it
is not recorded and its attributes are not kept.

Finished, sampled spans are buffered in Rust (per thread, then in one bounded global buffer;
overflow is dropped and counted in ``span_stats()["dropped"]``) until :func:`drain_spans`
takes them; :func:`write_spans_jsonl` and :mod:`system0.core.tracing_otel` export them.

An exception leaving a span marks it ``error`` with an ``exception`` event (type, message,
stack trace) and propagates unchanged.

The record is taken when the span exits, so a measurement made at the end (energy, cycles)
is attached before that: ``s.set_attribute("energy.joules", j)`` inside the block, or in a
wrapper's ``__exit__`` before it calls ``Span.__exit__``. Attributes set after exit are
ignored.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, ParamSpec, TypeVar, cast

from system0._core import (
    FinishedSpan,
    Span,
    SpanContext,
    _reset_after_fork,
    _reset_current,
    _set_current,
    current_context,
    current_span,
    drain_spans,
    extract,
    flush_spans,
    format_traceparent,
    inject,
    malformed_traceparent_count,
    sample_trace,
    sampling,
    set_span_buffer_capacity,
    span_stats,
    spans_to_jsonl,
)
from system0._core import set_sampling as _set_sampling

P = ParamSpec("P")
R = TypeVar("R")

#: ``span(name, *, parent=None, **attrs)``: a context manager (``with span("x") as s:``) and a
#: decorator (``@span("x")``) for sync and async functions. ``parent`` is a Span, a
#: SpanContext or a ``traceparent`` string (a malformed one is ignored and counted, and the
#: span starts a new trace); None means the current span.
span = Span

AttrValue = str | int | float | bool

# A forked child must not export the spans its parent buffered (the parent does): it starts
# with an empty buffer. The current span itself (a ContextVar) is inherited, so work in the
# child continues the parent's trace.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def set_sampling(ratio: float, *, parent_based: bool = True) -> None:
    """Record about ``ratio`` (0.0 to 1.0) of traces, decided from each trace id.

    With ``parent_based`` (the default) a span with a parent, local or remote, follows the
    parent's decision; otherwise every span decides from its trace id, which gives the same
    answer for the whole trace as long as every process uses the same ratio.
    """
    _set_sampling(ratio, parent_based)


def _decorate(func: Callable[..., Any], name: str, attrs: dict[str, Any]) -> Callable[..., Any]:
    """Wraps ``func`` so that each call runs in a new span (called by ``Span.__call__``)."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with Span(name, **attrs):
                return await func(*args, **kwargs)

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with Span(name, **attrs):
            return func(*args, **kwargs)

    return wrapper


def traced(
    name: str | None = None, **attrs: AttrValue
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Typed decorator form of ``@span(name)``; the name defaults to the function's qualname."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        return cast(Callable[P, R], _decorate(func, name or func.__qualname__, dict(attrs)))

    return decorate


@contextmanager
def use_context(parent: SpanContext | Span | str | None) -> Iterator[SpanContext | None]:
    """Makes ``parent`` (typically a received ``traceparent``) current for the block, so that
    every span created inside continues that trace. A malformed or empty header is ignored
    (and counted when malformed): the block then runs with the current context unchanged.
    """
    ctx = extract(parent) if isinstance(parent, str) else parent
    if ctx is None:
        yield current_context()
        return
    token = _set_current(ctx)
    try:
        yield ctx if isinstance(ctx, SpanContext) else ctx.context
    finally:
        _reset_current(token)


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Binds ``fn`` to the context current now (and so to the current span), for running it
    in another thread: ``Thread(target=wrap(work))``, ``pool.submit(wrap(work), x)``.

    Each call runs in its own copy of that context, so the wrapper may be called from several
    threads at once.
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


def write_spans_jsonl(fp: IO[str], spans: Iterable[FinishedSpan] | None = None) -> int:
    """Writes spans as JSON lines to a text stream; drains the collector when ``spans`` is
    None. Returns the number written. Each line holds name, hex ids (``parent_id`` null for a
    root), Unix ns start/end, duration, status, attributes and events.
    """
    batch = drain_spans() if spans is None else list(spans)
    if batch:
        fp.write(spans_to_jsonl(batch))
    return len(batch)


__all__ = [
    "AttrValue",
    "FinishedSpan",
    "Span",
    "SpanContext",
    "current_context",
    "current_span",
    "drain_spans",
    "extract",
    "flush_spans",
    "format_traceparent",
    "inject",
    "malformed_traceparent_count",
    "sample_trace",
    "sampling",
    "set_sampling",
    "set_span_buffer_capacity",
    "span",
    "span_stats",
    "spans_to_jsonl",
    "traced",
    "use_context",
    "wrap",
    "write_spans_jsonl",
]
