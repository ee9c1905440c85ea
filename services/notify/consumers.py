"""Notify's consumer of `notifications.v1`: each channel delivers each notification once.

A batch is delivered in three steps. One query reads the delivery rows of the whole batch: a
delivery with a row is not made again unless a crash left it `sending` (below). The calls then
run concurrently, at most `notify_concurrency` at once, in one lane per channel and recipient
(its group, or its phone for SMS): a recipient gets its messages in order while the others' go
out beside them, and a delivery waiting to retry holds only its own lane. Last, the outcomes are
written with the events they produce, staged in the outbox in the same transaction.

Exactly once per recipient across crashes: a replay finding `delivered`, `failed`, `queued` or
`unknown` sends nothing. A channel whose far side recognises a resend (Idempotency-Key, the
inbox's own ids) needs no row before its call: a replay finding none, or `sending` (a failed try
recorded, see below), sends again and the far side drops the double. Except for a notice that
quiet hours may hold: a replay inside them would hold it for a digest, which no far side can
tell from the message sent, so its `sending` row is committed before the call, in one
transaction for the batch, and a replay finding it sends it again at once instead of holding it.
A channel that cannot recognise a resend (chat robots, SMS vendors) is marked `unknown` on a
replay finding `sending`, and not resent. So such a channel's `sending` row is committed on its
own right before its call (committed earlier, a crash would make the deliveries not yet called
`unknown`), its outcome on its own as soon as the call returns, and its lane waits for that
commit before the next call: the residual window (call answered, outcome not yet committed)
stays the length of one commit and can lose one message but never double it. The outcomes of
idempotent channels are written together once the batch's calls are done, with the consumer's
ledger marks (a crash before costs resends the far side ignores): a batch of them costs one
write transaction. A try of theirs that failed and is retried is recorded at once with a
`sending` row, so that a run after a crash numbers its tries on from it.

A notification in its recipient's quiet hours (`services.notify.quiet_hours`) is not sent: each
of its deliveries is committed `held` together with its entry in the digest queue, which the
digester sends at the hours' end (`services.notify.digests`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from opentelemetry import context as trace_context
from opentelemetry import trace
from opentelemetry.context import Context
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import BatchHandler
from gridline.bus.envelope import Envelope, PermanentError, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import BeforeCommit, Database, after_commit
from gridline.ids import derived_id
from gridline.logging import get_logger
from gridline.settings import Settings
from gridline.timestamps import from_timestamp, now, to_timestamp
from services.notify import metrics, storage
from services.notify.budget import RobotBudget
from services.notify.channels.base import Channel, Message, Outgoing, TransientFailure
from services.notify.link_origin import TaskPageOrigin
from services.notify.routing import Router
from services.notify.templates import channel_broken_text, render

GROUP = "notify.notifications"
# Reports whose first delivery is known to be recorded, so that this process's later deliveries
# about them skip the claim; the oldest are forgotten (a forgotten one costs one claim again).
_CLAIMED_REPORTS_KEPT = 10_000
_CRASHED = "crashed during the vendor call; not resent to avoid a double"

log = get_logger(__name__)
_tracer = trace.get_tracer(__name__)


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

    def pause(self, failed: int) -> float:
        """Seconds to wait after `failed` failed tries: doubling from `initial`, plus up to
        `initial` of jitter, at most `maximum`."""
        return min(
            self.initial * 2.0 ** (failed - 1) + random.uniform(0, self.initial), self.maximum
        )


@dataclass(frozen=True)
class Outcome:
    """How one delivery ended."""

    outcome: str
    attempts: int
    error: str
    permanent: bool


@dataclass(frozen=True)
class Settled:
    """One delivery's outcome as it is written."""

    notice: events_pb2.Notification
    channel: str
    result: Outcome
    at: datetime
    # What the try that ended it got ("" when it succeeded), recorded as attempt number
    # `result.attempts`; None when no try ended it (over budget, a crash found on replay).
    last_try: str | None = None
    # The trace the delivery belongs to, continued by the events it produces.
    trace: Context | None = None


@dataclass(frozen=True)
class _Job:
    """One delivery to make: a notification through one channel."""

    notice: events_pb2.Notification
    channel: Channel
    outgoing: Outgoing
    trace: Context | None
    # Attempts recorded before, by a run that crashed or another replica.
    previous: int = 0

    @property
    def key(self) -> storage.Key:
        return (self.notice.notification_id, self.channel.name)

    @property
    def lane(self) -> tuple[str, str]:
        """Deliveries through one channel to one recipient go out in order."""
        return (self.channel.name, self.outgoing.phone or self.outgoing.message.group_id)

    def settled(self, result: Outcome, last_try: str | None = None) -> Settled:
        return Settled(self.notice, self.channel.name, result, now(), last_try, self.trace)


class Deliverer:
    """Delivers notifications through each of their channels, once, recording every attempt.

    `clock` says when it is for the quiet hours (and the digester of this deliverer).
    """

    def __init__(
        self,
        router: Router,
        db: Database,
        retry: RetryPolicy,
        budget: RobotBudget,
        concurrency: int = 32,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.router = router
        self._db = db
        self._retry = retry
        self.budget = budget
        self.clock = clock
        # Vendor calls in flight at once; a delivery waiting to retry holds none.
        self._calls = asyncio.Semaphore(concurrency)
        self._claimed_reports: OrderedDict[str, None] = OrderedDict()

    async def deliver(self, notice: events_pb2.Notification) -> None:
        """Every channel of one notification that has not finished yet."""
        await self.deliver_all([notice])

    async def deliver_all(
        self,
        notices: Sequence[events_pb2.Notification],
        traces: Mapping[str, Context] | None = None,
    ) -> None:
        """Every channel of every notification that has not finished yet; returns once all are
        settled. `traces` gives, by notification id, the trace a notification's calls run in.
        Those in their recipient's quiet hours are held for its end instead."""
        await self.settle(await self.send_all(notices, traces))

    async def send_all(
        self,
        notices: Sequence[events_pb2.Notification],
        traces: Mapping[str, Context] | None = None,
    ) -> list[Settled]:
        """As `deliver_all`, but what went out through idempotent channels is returned for
        the caller to `write` in a transaction of its own choosing (a replay before that resends
        it, which such a channel absorbs). Written here if a lane failed."""
        moment = self.clock()
        held = {
            notice.notification_id: until
            for notice in notices
            if (until := self.router.quiet.held_until(notice, moment)) is not None
        }
        crashed: list[_Job] = []
        if held:
            waiting = [n for n in notices if n.notification_id in held]
            crashed = await self._hold(self._targets(waiting, traces or {}), held, moment)
            notices = [n for n in notices if n.notification_id not in held]
        jobs = await self._open(self._targets(notices, traces or {}) + crashed)
        lanes: dict[tuple[str, str], list[_Job]] = {}
        for job in jobs:
            lanes.setdefault(job.lane, []).append(job)
        together: list[Settled] = []
        ended = await asyncio.gather(
            *(self._run_lane(lane, together) for lane in lanes.values()), return_exceptions=True
        )
        failures = [result for result in ended if isinstance(result, BaseException)]
        if failures:
            # What finished is written even when a lane failed: the replay then resends less.
            await self.settle(together)
            raise failures[0]
        return together

    def _targets(
        self, notices: Sequence[events_pb2.Notification], traces: Mapping[str, Context]
    ) -> list[_Job]:
        """Each (notification, channel) of the batch once, in the batch's order."""
        jobs: dict[storage.Key, _Job] = {}
        for notice in notices:
            message = message_of(notice)
            rendered = render(message)
            trace_of = traces.get(notice.notification_id)
            for channel, outgoing in self.router.targets(message, rendered, notice.recipient.phone):
                job = _Job(notice, channel, outgoing, trace_of)
                jobs.setdefault(job.key, job)
        return list(jobs.values())

    async def _hold(
        self, targets: list[_Job], until: Mapping[str, datetime], moment: datetime
    ) -> list[_Job]:
        """Commit each new delivery `held` and its digest queue entry, in one transaction: a
        replay finds it settled, and the digester sends it once `until` its notification.

        Returns the deliveries a crash left `sending`: the call may have gone out, so they are
        not held (a digest would repeat the message) but settled now as any such delivery is.
        """
        async with self._db.session() as session:
            found = await storage.deliveries_among(
                session, {job.notice.notification_id for job in targets}
            )
            held = await storage.open_deliveries(
                session,
                [
                    {**_sending_row(job), "outcome": storage.HELD, "finished_at": moment}
                    for job in targets
                    if job.key not in found
                ],
            )
            await storage.queue_for_digest(
                session,
                [
                    _digest_entry(
                        job.notice, job.channel.name, moment, until[job.notice.notification_id]
                    )
                    for job in targets
                    if job.key in held
                ],
            )
        for _, channel in held:
            metrics.DELIVERIES.labels(channel, storage.HELD).inc()
        return [job for job in targets if found.get(job.key, ("",))[0] == storage.SENDING]

    async def _open(self, targets: list[_Job]) -> list[_Job]:
        """Read the batch's delivery rows; the deliveries to make now.

        A robot's or SMS delivery a crash left `sending` is written `unknown`. A new delivery
        through a channel that recognises a resend gets its `sending` row here, the batch's in
        one statement, when quiet hours may hold its notice (`_claimed`), and none before its
        outcome otherwise; robots and SMS vendors get theirs from their lanes.
        """
        if not targets:
            return []
        async with self._db.session() as session:
            found = await storage.deliveries_among(
                session, {job.notice.notification_id for job in targets}
            )
            crashed = [job for job in targets if found.get(job.key, ("",))[0] == storage.SENDING]
            resent = {job.key for job in crashed if job.channel.idempotent}
            previous = await storage.attempt_counts(session, resent) if resent else {}
            await self.write(
                session,
                [
                    job.settled(
                        Outcome(storage.UNKNOWN, found[job.key][1], _CRASHED, permanent=False)
                    )
                    for job in crashed
                    if not job.channel.idempotent
                ],
            )
            created = await storage.open_deliveries(
                session,
                [
                    _sending_row(job)
                    for job in targets
                    if job.key not in found and self._claimed(job)
                ],
            )
        return [
            replace(job, previous=previous.get(job.key, 0)) if job.key in resent else job
            for job in targets
            if job.key in resent
            or (job.key not in found and (job.key in created or not self._claimed(job)))
        ]

    def _claimed(self, job: _Job) -> bool:
        """Whether an idempotent channel's delivery gets its `sending` row before the call."""
        return job.channel.idempotent and self.router.quiet.may_hold(job.notice)

    async def _run_lane(self, jobs: list[_Job], together: list[Settled]) -> None:
        """One recipient's deliveries through one channel, in order."""
        for job in jobs:
            if not job.channel.idempotent and not await self._open_one(job):
                continue  # another replica took it
            token = trace_context.attach(job.trace) if job.trace is not None else None
            try:
                settled = await self._attempt(job)
            finally:
                if token is not None:
                    trace_context.detach(token)
            if job.channel.idempotent:
                together.append(settled)
            else:
                await self.settle([settled])

    async def _open_one(self, job: _Job) -> bool:
        """Commit one delivery's `sending` row; whether it was new."""
        async with self._db.session() as session:
            return bool(await storage.open_deliveries(session, [_sending_row(job)]))

    async def _attempt(self, job: _Job) -> Settled:
        """Send with retries; the outcome and what the try that ended it got."""
        channel, outgoing = job.channel, job.outgoing
        robot = outgoing.robot
        started = time.perf_counter()
        tries = 0
        while True:
            tries += 1
            number = job.previous + tries
            if tries > 1:
                metrics.RETRIES.labels(channel.name).inc()
            async with self._calls:
                try:
                    # Taken right before the call, so the vendor counts it when the budget did.
                    if robot is not None and not await self.budget.take(robot.kind, robot.robot_id):
                        metrics.DELIVERIES.labels(channel.name, storage.QUEUED).inc()
                        return job.settled(Outcome(storage.QUEUED, number - 1, "", permanent=False))
                    await channel.send(outgoing)
                except TransientFailure as exc:
                    failure = exc
                except Exception as exc:
                    return self._failed(job, exc, number)
                else:
                    metrics.DELIVERIES.labels(channel.name, storage.DELIVERED).inc()
                    metrics.DELIVERY_SECONDS.labels(channel.name).observe(
                        time.perf_counter() - started
                    )
                    return job.settled(
                        Outcome(storage.DELIVERED, number, "", permanent=False), last_try=""
                    )
            if tries >= self._retry.attempts:
                return self._failed(job, failure, number)
            await self._record_try(job, number, str(failure))
            await asyncio.sleep(self._retry.pause(tries))

    def _failed(self, job: _Job, exc: Exception, number: int) -> Settled:
        log.warning("delivery failed", channel=job.channel.name, error=str(exc), attempts=number)
        metrics.DELIVERIES.labels(job.channel.name, storage.FAILED).inc()
        error = f"{type(exc).__name__}: {exc}"[:500]
        permanent = not isinstance(exc, TransientFailure)
        return job.settled(Outcome(storage.FAILED, number, error, permanent), last_try=str(exc))

    async def _record_try(self, job: _Job, number: int, error: str) -> None:
        """A failed try that will be retried, committed now with the delivery's `sending` row
        (its retry may outlive a crash, and a replay numbers its tries on from it)."""
        async with self._db.session() as session:
            await storage.open_deliveries(session, [_sending_row(job)])
            await storage.record_attempts(
                session,
                [
                    {
                        "notification_id": job.notice.notification_id,
                        "channel": job.channel.name,
                        "number": number,
                        "at": now(),
                        "ok": False,
                        "error": error[:500],
                    }
                ],
            )

    async def settle(self, settled: Sequence[Settled]) -> None:
        """Write outcomes and their events in one transaction."""
        if settled:
            async with self._db.session() as session:
                await self.write(session, settled)

    async def write(self, session: AsyncSession, settled: Sequence[Settled]) -> None:
        """Write outcomes in the caller's transaction: the try that ended each, the delivery
        rows, a digest entry for each queued one, their events staged in the outbox (outcome,
        dead letter, channel broken) and the first deliveries about reports claimed.

        Every row and event is made before the first statement: on SQLite that statement takes
        the database's one write lock until the commit, and other replicas wait for it.
        """
        if not settled:
            return
        # In key order: two replicas writing the same rows (a rebalance) lock them alike.
        settled = sorted(settled, key=lambda s: (s.notice.notification_id, s.channel))
        attempts = [
            {
                "notification_id": s.notice.notification_id,
                "channel": s.channel,
                "number": s.result.attempts,
                "at": s.at,
                "ok": not s.last_try,
                "error": s.last_try[:500],
            }
            for s in settled
            if s.last_try is not None
        ]
        outcomes = [
            {
                "notification_id": s.notice.notification_id,
                "channel": s.channel,
                "group_id": s.notice.recipient.group_id,
                "outcome": s.result.outcome,
                "attempts": s.result.attempts,
                "error": s.result.error,
                "finished_at": s.at,
            }
            for s in settled
        ]
        queued = [
            _digest_entry(s.notice, s.channel, s.at)
            for s in settled
            if s.result.outcome == storage.QUEUED
        ]
        for s in settled:
            if s.result.outcome != storage.QUEUED:
                self._stage_recorded(session, s)
            if s.result.outcome == storage.FAILED:
                self._stage_dead_letter(session, s)
        await storage.record_attempts(session, attempts)
        await storage.settle_deliveries(session, outcomes)
        await storage.queue_for_digest(session, queued)
        await self._claim_first_deliveries(
            session, [s for s in settled if s.result.outcome == storage.DELIVERED]
        )

    async def _claim_first_deliveries(
        self, session: AsyncSession, delivered: Sequence[Settled]
    ) -> None:
        """Time acceptance to delivery for reports whose first delivery this is."""
        firsts: dict[str, Settled] = {}
        for s in delivered:
            report_id = s.notice.report_id
            if (
                report_id
                and s.notice.HasField("report_accepted_at")
                and report_id not in self._claimed_reports
            ):
                firsts.setdefault(report_id, s)
        if not firsts:
            return
        claimed = await storage.claim_first_deliveries(
            session,
            [
                {
                    "report_id": report_id,
                    "notification_id": s.notice.notification_id,
                    "channel": s.channel,
                    "delivered_at": s.at,
                }
                for report_id, s in firsts.items()
            ],
        )

        def remember() -> None:
            for report_id, s in firsts.items():
                self._claimed_reports[report_id] = None
                if report_id in claimed:
                    accepted = from_timestamp(s.notice.report_accepted_at)
                    metrics.REPORT_FIRST_DELIVERY_SECONDS.observe((s.at - accepted).total_seconds())
            while len(self._claimed_reports) > _CLAIMED_REPORTS_KEPT:
                self._claimed_reports.popitem(last=False)

        after_commit(session, remember)

    def _stage_recorded(self, session: AsyncSession, s: Settled) -> None:
        notice = s.notice
        record = events_pb2.DeliveryRecorded(
            notification_id=notice.notification_id,
            channel=s.channel,
            group_id=notice.recipient.group_id,
            outcome=(
                events_pb2.DELIVERY_OUTCOME_DELIVERED
                if s.result.outcome == storage.DELIVERED
                else events_pb2.DELIVERY_OUTCOME_FAILED
            ),
            attempts=s.result.attempts,
            error=s.result.error,
            finished_at=to_timestamp(s.at),
        )
        stage(
            session,
            topics.DELIVERIES,
            Envelope(
                event_id=derived_id("delivery", notice.notification_id, s.channel),
                key=notice.notification_id,
                message=record,
                trace_context=s.trace,
            ),
        )

    def _stage_dead_letter(self, session: AsyncSession, s: Settled) -> None:
        """The notification to `notifications.v1.dlq`; a broken channel told to the office once a
        day (retries running out is an outage, not a broken channel: no notice)."""
        notice, channel, error = s.notice, s.channel, s.result.error
        stage(
            session,
            topics.dead_letter(topics.NOTIFICATIONS),
            Envelope(
                event_id=derived_id("notify-dlq", notice.notification_id, channel),
                key=notice.recipient.group_id,
                message=notice,
                headers={"dlq-error": error, "dlq-channel": channel, "dlq-group": GROUP},
                trace_context=s.trace,
            ),
        )
        if not s.result.permanent or notice.kind == events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN:
            return
        office = self.router.config.office_for(notice.recipient.level)
        if office is None:
            log.error("channel broken and no office configured", channel=channel)
            return
        broken_id = derived_id(
            "channel-broken", channel, notice.recipient.group_id, s.at.date().isoformat()
        )
        # The vendor's error stays in the dead letter and the log; the office reads Chinese.
        title, body = channel_broken_text(notice.recipient.group_name, channel)
        broken = build_notice(
            broken_id,
            events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN,
            # The groups file knows the office by its group id only: no name to show.
            common_pb2.Responsible(group_id=office),
            title=title,
            body=body,
            at=s.at,
        )
        stage(session, topics.NOTIFICATIONS, notice_envelope(broken, s.trace))


def _sending_row(job: _Job) -> dict[str, object]:
    """The `sending` row committed before a call (robots, SMS vendors, notices quiet hours may
    hold) or with a failed try."""
    return {
        "notification_id": job.notice.notification_id,
        "channel": job.channel.name,
        "group_id": job.outgoing.message.group_id,
        "outcome": storage.SENDING,
        "attempts": 0,
        "error": "",
        "finished_at": now(),
    }


def _digest_entry(
    notice: events_pb2.Notification,
    channel: str,
    at: datetime,
    held_until: datetime | None = None,
) -> dict[str, object]:
    """The digest queue row of a delivery over its robot's budget, or held `held_until` the
    end of its recipient's quiet hours."""
    return {
        "notification_id": notice.notification_id,
        "channel": channel,
        "group_id": notice.recipient.group_id,
        "kind": events_pb2.NotificationKind.Name(notice.kind),
        "title": notice.title[:500],
        "link": notice.link[:500],
        "notice": notice.SerializeToString(),
        "queued_at": at,
        "held_until": held_until,
        "digest_id": "",
        "claimed_at": None,
    }


def notification_batch_handler(deliverer: Deliverer, links: TaskPageOrigin) -> BatchHandler:
    """The runner's batch handler: deliver the batch's new notifications, each settled once.

    A notification whose link is not one of `links` is not delivered: once the others are,
    the handler raises PermanentError naming it, and the runner dead-letters it with that
    reason (applied again one by one, the delivered ones find their deliveries recorded).
    """

    async def handle(envelopes: Sequence[Envelope]) -> BeforeCommit | None:
        notices: list[events_pb2.Notification] = []
        refused: list[str] = []
        for envelope in envelopes:
            if not isinstance(envelope.message, events_pb2.Notification):
                raise TypeError(
                    f"{topics.NOTIFICATIONS} carries Notification, not {envelope.schema}"
                )
            reason = links.refusal(envelope.message.link)
            if reason is None:
                notices.append(envelope.message)
                continue
            log.error(
                "notification refused: foreign link",
                notification_id=envelope.message.notification_id,
                reason=reason,
            )
            refused.append(f"notification {envelope.message.notification_id}: {reason}")
        # Each notification's calls and the events they produce continue its CONSUMER span.
        traces = {
            e.message.notification_id: e.trace_context
            for e in envelopes
            if e.trace_context is not None and isinstance(e.message, events_pb2.Notification)
        }
        settled = await deliverer.send_all(notices, traces)
        if refused:
            await deliverer.settle(settled)
            raise PermanentError("link refused, not delivered: " + "; ".join(refused))
        # Written with the runner's ledger marks: one transaction for the batch's outcomes.
        return lambda session: deliverer.write(session, settled)

    return handle
