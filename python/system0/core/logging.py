"""Structured logging with causality: every record is one JSON line that carries the trace and
span id of the span current where it was logged, so logs join traces.

Three ways in, one record shape (``ts`` in RFC 3339 with ns, ``level``, ``logger``,
``event``, ``trace_id``, ``span_id``, then the fields)::

    log = get_logger("matchmaker")          # fast path: formatted and written in Rust
    log.info("queued", player="p1", wait_ms=12)

    configure_logging(level="info")         # the standard logging module, as JSON
    logging.getLogger("app").info("queued %s", "p1", extra={"wait_ms": 12})

    structlog.configure(processors=[add_trace_context, ...])   # structlog processor

Field values keep their JSON type (str, int of any size, float, bool, None, dict, list,
tuple); NaN and the infinities are written as the strings "NaN", "Infinity", "-Infinity";
anything else as its ``str()``. A field named like a fixed key (``ts``, ``level`` ...) is
written after it, so JSON readers that keep the last duplicate see the field.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import MutableMapping
from typing import IO, Any

from system0._core import Logger, current_context, format_log_record

# The attributes every LogRecord has; anything else on a record came from `extra=` and is
# written as a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

_default_sink: dict[str, Any] = {"fd": 2}
_default_level = "info"
_loggers: dict[str, Logger] = {}


def _is_text(stream: object) -> bool:
    return isinstance(stream, io.TextIOBase) or hasattr(stream, "encoding")


def get_logger(
    name: str = "system0",
    *,
    stream: IO[str] | IO[bytes] | None = None,
    fd: int | None = None,
    level: str | None = None,
) -> Logger:
    """A fast structured logger: ``log.info("event", key=value, ...)`` writes one JSON line.

    The record is built in Rust and written to ``fd`` (one ``write(2)`` per record, the GIL
    released) or to ``stream`` (its ``write`` gets ``str`` for a text stream, ``bytes`` for a
    binary one). Without either, the sink and level set by :func:`configure_logging` are used
    (standard error's fd 2 until then), and the logger is shared per name.
    """
    if stream is None and fd is None:
        cached = _loggers.get(name)
        if cached is not None and level is None:
            return cached
        log = _new_logger(name, level=level or _default_level, **_default_sink)
        if level is None:
            _loggers[name] = log
        return log
    return _new_logger(name, stream=stream, fd=fd, level=level or _default_level)


def _new_logger(
    name: str, *, level: str, stream: IO[str] | IO[bytes] | None = None, fd: int | None = None
) -> Logger:
    text = stream is not None and _is_text(stream)
    return Logger(name, fd=fd, stream=stream, text=text, level=level)


class JsonFormatter(logging.Formatter):
    """Formats a standard ``LogRecord`` as a system0 JSON line (built in Rust).

    ``event`` is the formatted message; ``extra=`` values become fields; ``exc_info`` becomes
    the field ``exception`` (the formatted traceback) and ``stack_info`` the field ``stack``.
    The trace context is the one current when the record is formatted, which for the
    ``StreamHandler``/``FileHandler`` and ``QueueHandler`` is the logging call's own context.
    """

    def __init__(self, *, with_location: bool = False) -> None:
        super().__init__()
        self.with_location = with_location

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS
        }
        if self.with_location:
            fields["module"] = record.module
            fields["func"] = record.funcName
            fields["line"] = record.lineno
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        line = format_log_record(
            record.levelname.lower(), record.name, record.getMessage(), fields or None
        )
        return line[:-1]  # the handler adds its own terminator


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, or None outside a span) to every record, for
    handlers that keep their own formatter (``%(trace_id)s`` in a format string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = current_context()
        record.trace_id = ctx.trace_id_hex if ctx is not None else None
        record.span_id = ctx.span_id_hex if ctx is not None else None
        return True


class _System0Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (marked so a second call replaces it)."""


def configure_logging(
    level: str | int = "info",
    stream: IO[str] | None = None,
    *,
    fd: int | None = None,
    logger: str | None = None,
    with_location: bool = False,
) -> logging.Handler:
    """Sends standard ``logging`` records through :class:`JsonFormatter` and sets the sink and
    level that :func:`get_logger` uses by default.

    ``stream`` defaults to ``sys.stderr``; ``logger`` names the logger to configure (the root
    when None). Calling it again replaces the handler it installed before. Returns the handler.
    """
    global _default_level
    target = logging.getLogger(logger)
    for h in list(target.handlers):
        if isinstance(h, _System0Handler):
            target.removeHandler(h)
    out: IO[str] = stream if stream is not None else sys.stderr
    if fd is not None:
        out = open(fd, "w", closefd=False, buffering=1)
    handler = _System0Handler(out)
    handler.setFormatter(JsonFormatter(with_location=with_location))
    target.addHandler(handler)
    target.setLevel(level.upper() if isinstance(level, str) else level)
    _default_level = logging.getLevelName(target.level).lower()
    _default_sink.clear()
    if fd is not None:
        _default_sink["fd"] = fd
    elif stream is not None:
        _default_sink["stream"] = stream
    else:
        _default_sink["fd"] = 2
    _loggers.clear()
    return handler


def add_trace_context(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor adding ``trace_id`` and ``span_id`` (hex) of the current span.

    Outside any span the event is left unchanged. Put it before the renderer::

        structlog.configure(processors=[add_trace_context, structlog.processors.JSONRenderer()])
    """
    ctx = current_context()
    if ctx is not None:
        event_dict["trace_id"] = ctx.trace_id_hex
        event_dict["span_id"] = ctx.span_id_hex
    return event_dict


__all__ = [
    "JsonFormatter",
    "Logger",
    "TraceContextFilter",
    "add_trace_context",
    "configure_logging",
    "format_log_record",
    "get_logger",
]
