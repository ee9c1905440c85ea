"""OpenTelemetry traces: one trace per report from the HTTP request to the delivery.

Off (no `GRIDLINE_OTLP_ENDPOINT`) nothing is installed: the API's no-op tracer stays in place,
no library is instrumented and the helpers below return at their first line. On, a
TracerProvider exports in batches over OTLP gRPC, and FastAPI, gRPC, SQLAlchemy, Redis and httpx
are traced by their official instrumentations; query strings and tokens in URLs and error texts
are redacted before a span is exported. Kafka has none for aiokafka, so the W3C trace context
rides in each record's headers: `inject_context` on the way out, `consumer_span` on the way in.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.trace import SpanContext, SpanKind
from starlette.types import ASGIApp, Receive, Scope, Send

from gridline.privacy import redact_error, redact_query, redact_url
from gridline.settings import Settings

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Link, TraceState
    from opentelemetry.util.types import Attributes
    from sqlalchemy.ext.asyncio import AsyncEngine

# Operations endpoints are polled all the time and say nothing about a report.
_UNTRACED_URLS = "healthz,readyz,metrics"

# TraceIdRatioBased compares the low 64 bits of a trace id with the ratio's share of this.
_TRACE_ID_LIMIT = 1 << 64

_provider: TracerProvider | None = None
_tracer: trace.Tracer = trace.NoOpTracer()


def enabled() -> bool:
    """Whether this process exports traces."""
    return _provider is not None


class Tracing:
    """The process's tracer provider: instruments apps and flushes spans at exit."""

    def __init__(self, provider: TracerProvider, sample_ratio: float) -> None:
        self.provider = provider
        self._sample_ratio = sample_ratio

    def instrument_app(self, app: FastAPI) -> None:
        """Trace the app's requests (a server span each, no per-message receive/send spans).

        A request is sampled at the edge, before the instrumentation: one left out skips its
        per-request work and runs in a context marked not sampled, which the services further
        down follow through the record headers.
        """
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from starlette.middleware.errors import ServerErrorMiddleware

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls=_UNTRACED_URLS,
            exclude_spans=["receive", "send"],
        )
        instrumented = app.build_middleware_stack
        ratio = self._sample_ratio

        def build() -> ASGIApp:
            # The instrumented stack is ServerErrorMiddleware(OpenTelemetryMiddleware(rest)).
            outer = instrumented()
            if isinstance(outer, ServerErrorMiddleware) and isinstance(
                outer.app, OpenTelemetryMiddleware
            ):
                outer.app = EdgeSampling(outer.app, outer.app.app, ratio)
            return outer

        app.build_middleware_stack = build  # type: ignore[method-assign]  # on this app alone

    def shutdown(self) -> None:
        """Export what is still buffered and stop."""
        self.provider.shutdown()


class EdgeSampling:
    """Decides whether an HTTP request is traced before any instrumentation runs.

    A request with a `traceparent` header follows its caller's decision (the traced path, whose
    sampler is parent-based). Any other is kept with probability `ratio`, by its trace id as
    TraceIdRatioBased would; one left out runs the untraced stack in a non-sampled context, so
    its cache commands, statements and records are not traced either.
    """

    def __init__(self, traced: ASGIApp, untraced: ASGIApp, ratio: float) -> None:
        self._traced = traced
        self._untraced = untraced
        self._bound = round(min(max(ratio, 0.0), 1.0) * _TRACE_ID_LIMIT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(k == b"traceparent" for k, _ in scope["headers"]):
            await self._traced(scope, receive, send)
            return
        trace_id = random.getrandbits(128) or 1
        if trace_id & (_TRACE_ID_LIMIT - 1) < self._bound:
            await self._traced(scope, receive, send)
            return
        left_out = SpanContext(trace_id, random.getrandbits(64) or 1, is_remote=False)
        token = context_api.attach(trace.set_span_in_context(trace.NonRecordingSpan(left_out)))
        try:
            await self._untraced(scope, receive, send)
        finally:
            context_api.detach(token)


def configure_tracing(settings: Settings, service: str) -> Tracing | None:
    """Install tracing for this process when an OTLP endpoint is set; None when it is off."""
    global _provider, _tracer
    if not settings.otlp_endpoint:
        return None
    # Imported here so that a process with tracing off never loads the SDK or instrumentations.
    from grpc_health.v1 import health
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider = build_provider(
        service, settings.trace_sample_ratio, OTLPSpanExporter(settings.otlp_endpoint)
    )
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("gridline")
    not_health = filters.negate(filters.service_name(health.SERVICE_NAME))
    GrpcAioInstrumentorServer(filter_=not_health).instrument(tracer_provider=provider)
    GrpcAioInstrumentorClient(filter_=not_health).instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    return Tracing(provider, settings.trace_sample_ratio)


def build_provider(service: str, sample_ratio: float, exporter: SpanExporter) -> TracerProvider:
    """The tracer provider of a service: sampled at entry points, URLs and errors redacted,
    exported in batches to `exporter` (batch size and delay follow the OTEL_BSP_* variables)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "gridline"}),
        sampler=ParentBased(_entry_point_sampler(sample_ratio)),
    )
    provider.add_span_processor(_redacting(BatchSpanProcessor(exporter)))
    return provider


# Span attributes that hold a URL, a path or a query, as the HTTP instrumentations set them
# (old and stable semantic conventions), and how each is redacted.
_URL_ATTRIBUTES: dict[str, Callable[[str], str]] = {
    "http.url": redact_url,
    "url.full": redact_url,
    "http.target": redact_url,
    "url.path": redact_url,
    "url.query": redact_query,
}
_EXCEPTION_TEXTS = ("exception.message", "exception.stacktrace")


def _redacting(exporting: SpanProcessor) -> SpanProcessor:
    """Hands `exporting` each ended span with its URLs and error texts redacted.

    Task-link signatures and robot keys ride in query strings and paths (`?s=`, `?key=`,
    `?access_token=`, `/hook/TOKEN`, `/t/ID`), which the HTTP instrumentations record whole
    (their own redaction knows a few cloud parameter names only), and they set them again after
    a span starts; exception events and statuses quote errors. So the span is rewritten once it
    has ended, as the copy the SDK hands every processor.
    """
    from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
    from opentelemetry.trace import Status

    def redacted(span: ReadableSpan) -> ReadableSpan:
        attributes = dict(span.attributes or {})
        for key, redact in _URL_ATTRIBUTES.items():
            value = attributes.get(key)
            if isinstance(value, str):
                attributes[key] = redact(value)
        events = [
            Event(
                event.name,
                {
                    key: redact_error(value)
                    if key in _EXCEPTION_TEXTS and isinstance(value, str)
                    else value
                    for key, value in (event.attributes or {}).items()
                },
                event.timestamp,
            )
            for event in span.events
        ]
        status = span.status
        if status.description:
            status = Status(status.status_code, redact_error(status.description))
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=events,
            links=span.links,
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    class Redacting(SpanProcessor):
        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            exporting.on_start(span, parent_context)

        def on_end(self, span: ReadableSpan) -> None:
            exporting.on_end(redacted(span))

        def shutdown(self) -> None:
            exporting.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporting.force_flush(timeout_millis)

    return Redacting()


def _entry_point_sampler(ratio: float) -> Sampler:
    """Starts traces only where work enters a service: a request served, a record consumed or
    produced. A statement, cache command or call with no parent (periodic workers, start-up)
    would be a one-span trace of its own, costing export without telling a story."""
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )

    class EntryPointSampler(Sampler):
        def __init__(self) -> None:
            self._ratio = TraceIdRatioBased(ratio)

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            if kind in (SpanKind.CLIENT, SpanKind.INTERNAL):
                return SamplingResult(Decision.DROP)
            if kind is SpanKind.SERVER:
                # HTTP requests were sampled at the edge (EdgeSampling); a gRPC call without a
                # parent is an operator's call, rare enough to keep.
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
            return self._ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"EntryPoint{{{self._ratio.get_description()}}}"

    return EntryPointSampler()


def instrument_engine(engine: AsyncEngine) -> None:
    """Trace each statement of the engine when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    # One tracer per engine rather than the global instrumentor, which also wraps every
    # Engine.connect in a span of its own.
    EngineTracer(
        _provider.get_tracer(SQLAlchemyInstrumentor.__module__),
        engine.sync_engine,
        get_meter(SQLAlchemyInstrumentor.__module__).create_up_down_counter(
            "db.client.connections.usage", unit="connections"
        ),
    )


def capture_context() -> Context | None:
    """The current trace context, to produce an event in it later (None when tracing is off)."""
    return context_api.get_current() if _provider is not None else None


def inject_context(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (`traceparent`, `tracestate`) to outgoing headers."""
    if _provider is not None:
        propagate.inject(headers)


@contextlib.contextmanager
def producer_span(topic: str, event_id: str, parent: Context | None = None) -> Iterator[None]:
    """A PRODUCER span around sending one record and waiting for the broker's confirm.

    Its parent is the current span, or `parent` (from `capture_context`) for an event sent on
    behalf of a request other than the current one, as when several go to the broker at once.
    """
    if _provider is None:
        yield
        return
    with _tracer.start_as_current_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            messaging.MESSAGING_SYSTEM: "kafka",
            messaging.MESSAGING_OPERATION_TYPE: "send",
            messaging.MESSAGING_OPERATION_NAME: "send",
            messaging.MESSAGING_DESTINATION_NAME: topic,
            messaging.MESSAGING_MESSAGE_ID: event_id,
        },
    ):
        yield


def _consumer_attributes(record: ConsumerRecord, group: str) -> dict[str, str | int]:
    return {
        messaging.MESSAGING_SYSTEM: "kafka",
        messaging.MESSAGING_OPERATION_TYPE: "process",
        messaging.MESSAGING_OPERATION_NAME: "process",
        messaging.MESSAGING_DESTINATION_NAME: record.topic,
        messaging.MESSAGING_DESTINATION_PARTITION_ID: str(record.partition),
        messaging.MESSAGING_KAFKA_OFFSET: record.offset,
        messaging.MESSAGING_CONSUMER_GROUP_NAME: group,
    }


def _producer_context(record: ConsumerRecord) -> Context:
    return propagate.extract({k: v.decode(errors="replace") for k, v in record.headers})


@contextlib.contextmanager
def consumer_span(record: ConsumerRecord, group: str) -> Iterator[None]:
    """A CONSUMER span, child of the producer's context in the headers, around one record."""
    if _provider is None:
        yield
        return
    with _tracer.start_as_current_span(
        f"process {record.topic}",
        context=_producer_context(record),
        kind=SpanKind.CONSUMER,
        attributes=_consumer_attributes(record, group),
    ):
        yield


@contextlib.contextmanager
def consumer_spans(records: Sequence[ConsumerRecord], group: str) -> Iterator[list[Context | None]]:
    """A CONSUMER span per record, open together while a batch is handled; yields the context
    of each (None when tracing is off), for the work done on that record's behalf."""
    if _provider is None:
        yield [None] * len(records)
        return
    spans = [
        _tracer.start_span(
            f"process {record.topic}",
            context=_producer_context(record),
            kind=SpanKind.CONSUMER,
            attributes=_consumer_attributes(record, group),
        )
        for record in records
    ]
    try:
        yield [trace.set_span_in_context(span) for span in spans]
    finally:
        for span in spans:
            span.end()
