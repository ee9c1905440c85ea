"""Structured logging: one JSON (or console) line per event, with the service name and, inside a
traced operation, its trace and span ids; personal data, secrets and SQL parameters redacted."""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace
from structlog.types import EventDict, WrappedLogger

from gridline.privacy import redact_error
from gridline.settings import Settings


def configure_logging(settings: Settings, service: str) -> None:
    """Route stdlib and structlog output through one renderer on stderr."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        # After the traceback is text and before ids and time are added (hex and digits that
        # need no scrubbing).
        redact_personal_data,
        add_trace_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Per-request access lines would drown the pipeline's own events.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # At DEBUG aiosqlite logs every statement with its parameters (addresses, task summaries,
    # the directory), in a form `redact_error` cannot tell from text: SQL parameters are never
    # written, whatever the level.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    structlog.contextvars.bind_contextvars(service=service)


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact_error(value)
    if isinstance(value, BaseException):
        return redact_error(f"{type(value).__name__}: {value}")
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def redact_personal_data(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Redact every text of a log event, the message and traceback included, as `redact_error`
    does: SQL parameters, URL queries and tokens, robot keys, ID numbers and mobiles."""
    for key, value in event.items():
        # The stdlib record rides along for the formatter; its message is already `event`.
        if not key.startswith("_"):
            event[key] = _redacted(value)
    return event


def add_trace_ids(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Add `trace_id` and `span_id` of the current span, if any, to a log event."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = trace.format_trace_id(context.trace_id)
        event["span_id"] = trace.format_span_id(context.span_id)
    return event


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
