"""Protobuf payloads with their Kafka headers: `schema`, `event-id` and trace context."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import DecodeError, Message
from opentelemetry.context import Context

from gridline.contracts.v1 import events_pb2
from gridline.tracing import inject_context

SCHEMA_HEADER = "schema"
EVENT_ID_HEADER = "event-id"

# Every event payload a topic may carry, by its full protobuf name.
EVENT_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        events_pb2.ReportAccepted,
        events_pb2.TaskEvent,
        events_pb2.EscalationRaised,
        events_pb2.Notification,
        events_pb2.DeliveryRecorded,
    )
}


class UndecodableRecord(Exception):
    """A record that can never be processed: no event id, unknown schema or corrupt bytes."""


class PermanentError(Exception):
    """A handler's verdict that retrying cannot help: the record is dead-lettered at once."""


@dataclass(frozen=True)
class Envelope:
    """One event as it travels: its id, key and payload, plus any extra headers."""

    event_id: str
    key: str
    message: Message
    headers: dict[str, str] = field(default_factory=dict)
    # The trace context the event belongs to when it is not the sender's current one (see
    # `gridline.tracing.capture_context`); the producer's span for it is made its child.
    trace_context: Context | None = field(default=None, compare=False)

    @property
    def schema(self) -> str:
        """The payload's full protobuf name."""
        return str(self.message.DESCRIPTOR.full_name)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """Headers as aiokafka sends them, with the current trace context when tracing is on.

        The context is the caller's, replacing any a consumed envelope brought along, so that an
        event produced while handling another continues the handler's trace.
        """
        base = {SCHEMA_HEADER: self.schema, EVENT_ID_HEADER: self.event_id, **self.headers}
        inject_context(base)
        return [(k, v.encode()) for k, v in base.items()]


def decode(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> Envelope:
    """An envelope from a consumed record, or UndecodableRecord saying why not."""
    found = {k: v.decode(errors="replace") for k, v in headers}
    event_id = found.pop(EVENT_ID_HEADER, "")
    schema = found.pop(SCHEMA_HEADER, "")
    if not event_id:
        raise UndecodableRecord("record has no event-id header")
    cls = EVENT_TYPES.get(schema)
    if cls is None:
        raise UndecodableRecord(f"unknown schema {schema!r}")
    message = cls()
    try:
        message.ParseFromString(value or b"")
    except DecodeError as exc:
        raise UndecodableRecord(f"payload is not a valid {schema}: {exc}") from exc
    return Envelope(
        event_id=event_id,
        key=(key or b"").decode(errors="replace"),
        message=message,
        headers=found,
    )


def notice_envelope(
    notice: events_pb2.Notification, trace_context: Context | None = None
) -> Envelope:
    """A notice as it travels on notifications.v1, keyed by the recipient's group so that a
    group's notices stay in order."""
    return Envelope(
        event_id=notice.notification_id,
        key=notice.recipient.group_id,
        message=notice,
        trace_context=trace_context,
    )
