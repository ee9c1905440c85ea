"""Notify's consumer of `notifications.v1`: each channel delivers each notification once."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import events_pb2
from gridline.ids import derived_id
from gridline.logging import get_logger
from gridline.timestamps import from_timestamp, now, to_timestamp
from services.notify import metrics, storage
from services.notify.channels.base import Channel, Message, PermanentFailure

GROUP = "notify.notifications"
_ATTEMPTS = 3

log = get_logger(__name__)


def render(notice: events_pb2.Notification) -> Message:
    """The message a channel sends for a notification (its text is masked upstream)."""
    return Message(
        notification_id=notice.notification_id,
        kind=events_pb2.NotificationKind.Name(notice.kind),
        level=notice.recipient.level,
        group_id=notice.recipient.group_id,
        group_name=notice.recipient.group_name,
        title=notice.title,
        text=notice.body,
        link=notice.link,
        task_id=notice.task_id,
        report_id=notice.report_id,
        report_accepted_at=from_timestamp(notice.report_accepted_at).isoformat(),
    )


async def _deliver(channel: Channel, message: Message) -> tuple[bool, int, str]:
    attempts = 0
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_not_exception_type(PermanentFailure),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                await channel.send(message)
    except Exception as exc:
        log.warning("delivery failed", channel=channel.name, error=str(exc), attempts=attempts)
        return False, attempts, f"{type(exc).__name__}: {exc}"[:500]
    return True, attempts, ""


def notification_handler(channels: Sequence[Channel], producer: EventProducer) -> Handler:
    """Deliver through every channel not yet done, log each outcome and publish it."""

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        notice = envelope.message
        if not isinstance(notice, events_pb2.Notification):
            raise TypeError(f"{topics.NOTIFICATIONS} carries Notification, not {envelope.schema}")
        message = render(notice)
        done = await storage.delivered_channels(session, notice.notification_id)
        for channel in channels:
            if channel.name in done:
                continue
            started = time.perf_counter()
            ok, attempts, error = await _deliver(channel, message)
            finished = now()
            outcome = "delivered" if ok else "failed"
            metrics.DELIVERIES.labels(channel.name, outcome).inc()
            metrics.DELIVERY_SECONDS.labels(channel.name).observe(time.perf_counter() - started)
            if ok and notice.HasField("report_accepted_at"):
                metrics.REPORT_TO_DELIVERY_SECONDS.labels(channel.name).observe(
                    (finished - from_timestamp(notice.report_accepted_at)).total_seconds()
                )
            record = events_pb2.DeliveryRecorded(
                notification_id=notice.notification_id,
                channel=channel.name,
                group_id=message.group_id,
                outcome=(
                    events_pb2.DELIVERY_OUTCOME_DELIVERED
                    if ok
                    else events_pb2.DELIVERY_OUTCOME_FAILED
                ),
                attempts=attempts,
                error=error,
                finished_at=to_timestamp(finished),
            )
            await producer.publish(
                topics.DELIVERIES,
                Envelope(
                    event_id=derived_id("delivery", notice.notification_id, channel.name),
                    key=notice.notification_id,
                    message=record,
                ),
            )
            session.add(
                storage.Delivery(
                    notification_id=notice.notification_id,
                    channel=channel.name,
                    group_id=message.group_id,
                    outcome=outcome,
                    attempts=attempts,
                    error=error,
                    finished_at=finished,
                )
            )

    return handle
