"""Notify's consumer of `notifications.v1`: each channel delivers each notification once.

Exactly once per recipient across crashes: before a vendor call, a `sending` row is committed on
its own; after it, the outcome. A replay finding `delivered` or `failed` sends nothing. One
finding `sending` means the process died around a call: a channel whose far side recognises a
resend (Idempotency-Key, the inbox's own ids) sends again; one that cannot (chat robots, SMS
vendors) is marked `unknown` and not resent, so the residual window (call answered, outcome not
yet committed: the length of one commit) can lose one message but never double it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.logging import get_logger
from gridline.settings import Settings
from gridline.timestamps import from_timestamp, now, to_timestamp
from services.notify import metrics, storage
from services.notify.budget import RobotBudget
from services.notify.channels.base import (
    Channel,
    Message,
    Outgoing,
    TransientFailure,
)
from services.notify.routing import Router
from services.notify.templates import render

GROUP = "notify.notifications"
# Reports whose first delivery is known to be recorded, so that this process's later deliveries
# about them skip the claim; the oldest are forgotten (a forgotten one costs one claim again).
_CLAIMED_REPORTS_KEPT = 10_000

log = get_logger(__name__)


def message_of(notice: events_pb2.Notification) -> Message:
    """The message channels carry for a notification."""
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


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in tries."""

    attempts: int
    initial: float
    maximum: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings give."""
        return cls(
            settings.notify_max_attempts,
            settings.notify_retry_initial_seconds,
            settings.notify_retry_max_seconds,
        )


class OverBudget(Exception):
    """The robot's budget has no room: the message waits for a digest."""


@dataclass(frozen=True)
class Outcome:
    """How one delivery ended."""

    outcome: str
    attempts: int
    error: str
    permanent: bool


class Deliverer:
    """Delivers one notification through each of its channels, once, recording every attempt."""

    def __init__(
        self,
        router: Router,
        producer: EventProducer,
        db: Database,
        retry: RetryPolicy,
        budget: RobotBudget,
    ) -> None:
        self.router = router
        self._producer = producer
        self._db = db
        self._retry = retry
        self.budget = budget
        self._claimed_reports: OrderedDict[str, None] = OrderedDict()

    async def deliver(self, notice: events_pb2.Notification) -> None:
        """Every channel of the notification that has not finished yet."""
        message = message_of(notice)
        rendered = render(message)
        for channel, outgoing in self.router.targets(message, rendered, notice.recipient.phone):
            await self._through(channel, outgoing, notice)

    async def _through(
        self, channel: Channel, outgoing: Outgoing, notice: events_pb2.Notification
    ) -> None:
        nid = notice.notification_id
        async with self._db.session() as session:
            row = await storage.delivery(session, nid, channel.name)
            if row is not None and row.outcome in storage.SETTLED:
                return
            # Attempts are recorded only after this row is committed: a new row has none.
            previous = 0
            if row is None:
                session.add(
                    storage.Delivery(
                        notification_id=nid,
                        channel=channel.name,
                        group_id=outgoing.message.group_id,
                        outcome=storage.SENDING,
                        attempts=0,
                        finished_at=now(),
                    )
                )
            elif not channel.idempotent:
                await self._settle(
                    session,
                    notice,
                    channel.name,
                    Outcome(
                        storage.UNKNOWN,
                        row.attempts,
                        "crashed during the vendor call; not resent to avoid a double",
                        permanent=False,
                    ),
                )
                return
            else:
                previous = await storage.attempt_count(session, nid, channel.name)
        result = await self._attempt(channel, outgoing, previous)
        async with self._db.session() as session:
            if result.outcome == storage.QUEUED:
                await self._queue(session, notice, channel.name)
            else:
                await self._settle(session, notice, channel.name, result)
        if result.outcome == storage.DELIVERED:
            await self._time_first_delivery(notice, channel.name)

    async def _queue(
        self, session: AsyncSession, notice: events_pb2.Notification, channel: str
    ) -> None:
        row = await storage.delivery(session, notice.notification_id, channel)
        assert row is not None
        row.outcome, row.finished_at = storage.QUEUED, now()
        session.add(row)
        session.add(
            storage.DigestEntry(
                notification_id=notice.notification_id,
                channel=channel,
                group_id=notice.recipient.group_id,
                kind=events_pb2.NotificationKind.Name(notice.kind),
                title=notice.title[:500],
                link=notice.link[:500],
                notice=notice.SerializeToString(),
                queued_at=now(),
            )
        )

    async def settle(self, notice: events_pb2.Notification, channel: str, result: Outcome) -> None:
        """Write a delivery's outcome, publish it, and dead-letter a permanent failure."""
        async with self._db.session() as session:
            await self._settle(session, notice, channel, result)
        if result.outcome == storage.DELIVERED:
            await self._time_first_delivery(notice, channel)

    async def _time_first_delivery(self, notice: events_pb2.Notification, channel: str) -> None:
        """Observe acceptance to delivery if this is the first delivery about the report."""
        if not notice.report_id or not notice.HasField("report_accepted_at"):
            return
        if notice.report_id in self._claimed_reports:
            return
        delivered_at = now()
        first = storage.FirstDelivery(
            report_id=notice.report_id,
            notification_id=notice.notification_id,
            channel=channel,
            delivered_at=delivered_at,
        )
        claimed = await storage.claim_first_delivery(self._db, first)
        self._claimed_reports[notice.report_id] = None
        if len(self._claimed_reports) > _CLAIMED_REPORTS_KEPT:
            self._claimed_reports.popitem(last=False)
        if claimed:
            accepted = from_timestamp(notice.report_accepted_at)
            metrics.REPORT_FIRST_DELIVERY_SECONDS.observe((delivered_at - accepted).total_seconds())

    async def _settle(
        self,
        session: AsyncSession,
        notice: events_pb2.Notification,
        channel: str,
        result: Outcome,
    ) -> None:
        await storage.settle_delivery(
            session,
            notice.notification_id,
            channel,
            outcome=result.outcome,
            attempts=result.attempts,
            error=result.error,
            finished_at=now(),
        )
        await self._publish(notice, channel, result)
        if result.outcome == storage.FAILED:
            await self._dead_letter(notice, channel, result.error, broken=result.permanent)

    async def _attempt(self, channel: Channel, outgoing: Outgoing, previous: int) -> Outcome:
        """Send with retries; `previous` attempts were made before (by a run that crashed)."""
        nid = outgoing.message.notification_id
        number = previous
        started = time.perf_counter()
        robot = outgoing.robot
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._retry.attempts),
                wait=wait_exponential_jitter(
                    multiplier=self._retry.initial,
                    max=self._retry.maximum,
                    jitter=self._retry.initial,
                ),
                retry=retry_if_exception_type(TransientFailure),
                reraise=True,
            ):
                with attempt:
                    number += 1
                    if number > previous + 1:
                        metrics.RETRIES.labels(channel.name).inc()
                    if robot is not None and not await self.budget.take(robot.kind, robot.robot_id):
                        raise OverBudget
                    try:
                        await channel.send(outgoing)
                    except Exception as exc:
                        await self.record_attempt(nid, channel.name, number, str(exc))
                        raise
                    await self.record_attempt(nid, channel.name, number, "")
        except OverBudget:
            metrics.DELIVERIES.labels(channel.name, storage.QUEUED).inc()
            return Outcome(storage.QUEUED, number - 1, "", permanent=False)
        except Exception as exc:
            permanent = not isinstance(exc, TransientFailure)
            log.warning("delivery failed", channel=channel.name, error=str(exc), attempts=number)
            metrics.DELIVERIES.labels(channel.name, storage.FAILED).inc()
            error = f"{type(exc).__name__}: {exc}"[:500]
            return Outcome(storage.FAILED, number, error, permanent=permanent)
        metrics.DELIVERIES.labels(channel.name, storage.DELIVERED).inc()
        metrics.DELIVERY_SECONDS.labels(channel.name).observe(time.perf_counter() - started)
        return Outcome(storage.DELIVERED, number, "", permanent=False)

    async def record_attempt(self, nid: str, channel: str, number: int, error: str) -> None:
        async with self._db.session() as session:
            session.add(
                storage.Attempt(
                    notification_id=nid,
                    channel=channel,
                    number=number,
                    at=now(),
                    ok=not error,
                    error=error[:500],
                )
            )

    async def _publish(
        self, notice: events_pb2.Notification, channel: str, result: Outcome
    ) -> None:
        record = events_pb2.DeliveryRecorded(
            notification_id=notice.notification_id,
            channel=channel,
            group_id=notice.recipient.group_id,
            outcome=(
                events_pb2.DELIVERY_OUTCOME_DELIVERED
                if result.outcome == storage.DELIVERED
                else events_pb2.DELIVERY_OUTCOME_FAILED
            ),
            attempts=result.attempts,
            error=result.error,
            finished_at=to_timestamp(now()),
        )
        await self._producer.publish(
            topics.DELIVERIES,
            Envelope(
                event_id=derived_id("delivery", notice.notification_id, channel),
                key=notice.notification_id,
                message=record,
            ),
        )

    async def _dead_letter(
        self, notice: events_pb2.Notification, channel: str, error: str, *, broken: bool
    ) -> None:
        """The notification to `notifications.v1.dlq`; a broken channel told to the office once a
        day (retries running out is an outage, not a broken channel: no notice)."""
        await self._producer.publish(
            topics.dead_letter(topics.NOTIFICATIONS),
            Envelope(
                event_id=derived_id("notify-dlq", notice.notification_id, channel),
                key=notice.recipient.group_id,
                message=notice,
                headers={"dlq-error": error, "dlq-channel": channel, "dlq-group": GROUP},
            ),
        )
        if not broken or notice.kind == events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN:
            return
        office = self.router.config.office_for(notice.recipient.level)
        if office is None:
            log.error("channel broken and no office configured", channel=channel)
            return
        broken_id = derived_id(
            "channel-broken", channel, notice.recipient.group_id, now().date().isoformat()
        )
        broken = events_pb2.Notification(
            notification_id=broken_id,
            kind=events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN,
            recipient=common_pb2.Responsible(group_id=office, group_name=office),
            title=f"{notice.recipient.group_name} 的 {channel} 通道无法发送",
            body=f"错误：{error[:200]}。该群的通知改由其他通道送达，请尽快修复配置。",
            created_at=to_timestamp(now()),
        )
        await self._producer.publish(
            topics.NOTIFICATIONS, Envelope(event_id=broken_id, key=office, message=broken)
        )


def notification_handler(deliverer: Deliverer) -> Handler:
    """The runner's handler: deliver each notification (outcomes commit on their own)."""

    async def handle(envelope: Envelope, _session: AsyncSession) -> None:
        notice = envelope.message
        if not isinstance(notice, events_pb2.Notification):
            raise TypeError(f"{topics.NOTIFICATIONS} carries Notification, not {envelope.schema}")
        await deliverer.deliver(notice)

    return handle
