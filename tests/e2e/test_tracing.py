"""One report, one trace: intake, assignment, escalation and notify export to one OTLP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from gridline_cli.platform import Platform
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform
from tests.e2e.test_pipeline import placeable_report, post_report
from tests.helpers import eventually
from tests.otlp_sink import OtlpSink, ReceivedSpan


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtlpSink]:
    """An OTLP collector on a free loopback port, keeping every span."""
    with OtlpSink(tmp_path_factory.mktemp("otlp") / "spans.jsonl") as sink:
        yield sink


@pytest.fixture(scope="module")
def traced_platform(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookServer, receiver: OtlpSink
) -> Iterator[Platform]:
    """The platform on embedded parts, every service exporting spans to the receiver."""
    running = start_platform(
        tmp_path_factory.mktemp("platform-traced"),
        webhook,
        extra_env={"GRIDLINE_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"},
    )
    yield running
    running.stop()


def _log_lines(path: Path) -> list[dict[str, object]]:
    """The JSON lines of a service's log written so far (gRPC's own lines are not JSON)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]


async def test_one_report_is_one_trace_from_intake_to_the_delivery(
    traced_platform: Platform, webhook: WebhookServer, receiver: OtlpSink
) -> None:
    body, _ = placeable_report(seed=7)
    report_id = await post_report(traced_platform, body)

    async def delivered() -> bool:
        return bool(webhook.for_report(report_id))

    await eventually(delivered, within=15)

    def report_requests() -> list[ReceivedSpan]:
        return [
            span
            for span in receiver.spans()
            if span.service == "intake"
            and span.kind == trace_pb2.Span.SPAN_KIND_SERVER
            and span.attributes.get("http.route") == "/v1/reports"
        ]

    async def request_exported() -> bool:
        return bool(report_requests())

    await eventually(request_exported, within=10)
    [intake_request] = report_requests()
    trace_id = intake_request.trace_id

    def in_trace() -> list[ReceivedSpan]:
        return [span for span in receiver.spans() if span.trace_id == trace_id]

    def consumed(spans: list[ReceivedSpan]) -> set[tuple[str, str]]:
        return {
            (s.service, s.attributes["messaging.destination.name"])
            for s in spans
            if s.kind == trace_pb2.Span.SPAN_KIND_CONSUMER
        }

    # The report's event reaches assignment, whose task and notification events reach
    # escalation and notify.
    expected = {
        ("assignment", "reports.v1"),
        ("escalation", "tasks.v1"),
        ("notify", "notifications.v1"),
    }

    async def whole_chain_exported() -> bool:
        return expected <= consumed(in_trace())

    await eventually(whole_chain_exported, within=10)
    spans = in_trace()
    assert {"intake", "assignment", "escalation", "notify"} <= {s.service for s in spans}
    consumer = next(s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_CONSUMER)
    assert consumer.attributes["messaging.system"] == "kafka"
    assert consumer.attributes["messaging.consumer.group.name"]
    assert "messaging.kafka.offset" in consumer.attributes
    # The vendor call is traced and hands the trace on in its own headers.
    assert any(
        s.service == "notify" and s.kind == trace_pb2.Span.SPAN_KIND_CLIENT and s.name == "POST"
        for s in spans
    )
    deliveries = webhook.for_report(report_id)
    assert all(r.headers["traceparent"].split("-")[1] == trace_id for r in deliveries)

    # Notify's consumer logs each delivery call with the trace id and the call's span id.
    assert traced_platform.log_dir is not None
    notify_log = traced_platform.log_dir / "notify.log"

    async def calls_logged_in_trace() -> bool:
        logged = [line for line in _log_lines(notify_log) if line.get("trace_id") == trace_id]
        calls = {
            str(line["span_id"])
            for line in logged
            if str(line["event"]).startswith("HTTP Request: POST")
        }
        return bool(calls) and calls <= {s.span_id for s in in_trace()}

    await eventually(calls_logged_in_trace, within=10)
