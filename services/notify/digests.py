"""Digests: messages a robot had no budget for, and those held in their recipient's quiet hours,
go out merged, each exactly once.

Every replica runs a digester. Each tick it looks for groups with entries due (over budget: at
once; held: from the end of their quiet hours), takes one send from the robot's budget (other
channels have none), claims the oldest due entries that fit one message (a conditional update,
so two replicas never claim the same entry), sends them as one digest and settles its entries in
one transaction, which also stages their events in the outbox and drops them from the queue.
The night's held notices of a group thus go out as one morning digest, once, whichever replica
claims them. A replica that died holding a claim leaves it; after `STALE_CLAIM` another marks
those entries `unknown` rather than risk a double (robots cannot recognise a resend).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import col, select

from gridline.contracts.v1 import events_pb2
from gridline.db import Database
from gridline.logging import get_logger
from gridline.workers import PeriodicWorker
from services.notify import metrics, storage
from services.notify.channels.base import Channel, Message, TransientFailure
from services.notify.consumers import Deliverer, Outcome, Settled
from services.notify.routing import ROBOT_KINDS
from services.notify.templates import (
    DIGEST_LIMIT_BYTES,
    digest_line,
    render_digest,
    render_held_digest,
)

log = get_logger(__name__)

STALE_CLAIM = timedelta(minutes=5)
_LOOK_AHEAD = 60
_GONE = "the group no longer has this channel"


class Digester(PeriodicWorker):
    """Sends waiting entries as digests within each robot's budget, held ones from the end of
    their quiet hours, one flush per tick."""

    name = "notify digester"

    def __init__(self, deliverer: Deliverer, db: Database, tick_seconds: float = 1.0) -> None:
        self._deliverer = deliverer
        self._db = db
        super().__init__(tick_seconds)

    async def run_pass(self) -> None:
        """Flush what is due and the budgets allow now."""
        await self.flush()

    async def flush(self) -> int:
        """Send what is due and budgets allow now; the number of digests sent."""
        moment = self._deliverer.clock()
        await self._expire_stale_claims(moment)
        async with self._db.session() as session:
            waiting = await session.exec(
                select(storage.DigestEntry.group_id, storage.DigestEntry.channel)
                .where(storage.DigestEntry.digest_id == "", _due(moment))
                .distinct()
            )
            pairs = list(waiting.all())
        metrics.DIGEST_QUEUE.set(await self._depth())
        router = self._deliverer.router
        sent = 0
        for group_id, channel_name in pairs:
            channel = router.channel(channel_name)
            if channel is None:
                continue
            if channel_name in ROBOT_KINDS:
                robot = router.config.group(group_id).robot
                if robot is None or robot.kind != channel_name:
                    continue
                if not await self._deliverer.budget.take(robot.kind, robot.robot_id):
                    continue
            entries = await self._claim(group_id, channel_name, moment)
            if entries:
                await self._send(channel, entries)
                sent += 1
        return sent

    async def _depth(self) -> int:
        async with self._db.session() as session:
            counted = await session.exec(select(func.count()).select_from(storage.DigestEntry))
            return counted.one()

    async def _claim(
        self, group_id: str, channel: str, moment: datetime
    ) -> list[storage.DigestEntry]:
        digest_id = uuid.uuid4().hex
        async with self._db.session() as session:
            oldest = await session.exec(
                select(storage.DigestEntry)
                .where(
                    storage.DigestEntry.group_id == group_id,
                    storage.DigestEntry.channel == channel,
                    storage.DigestEntry.digest_id == "",
                    _due(moment),
                )
                .order_by(col(storage.DigestEntry.queued_at))
                .limit(_LOOK_AHEAD)
            )
            chosen: list[str] = []
            size = 0
            for entry in oldest.all():
                line = digest_line(len(chosen) + 1, entry.kind, entry.title, entry.link)
                size += len(line.encode()) + 1
                if size > DIGEST_LIMIT_BYTES - 300:
                    break
                chosen.append(entry.notification_id)
            await session.exec(
                update(storage.DigestEntry)
                .where(
                    col(storage.DigestEntry.notification_id).in_(chosen),
                    col(storage.DigestEntry.channel) == channel,
                    col(storage.DigestEntry.digest_id) == "",
                )
                .values(digest_id=digest_id, claimed_at=moment)
            )
        async with self._db.session() as session:
            claimed = await session.exec(
                select(storage.DigestEntry)
                .where(storage.DigestEntry.digest_id == digest_id)
                .order_by(col(storage.DigestEntry.queued_at))
            )
            return list(claimed.all())

    async def _send(self, sender: Channel, entries: list[storage.DigestEntry]) -> None:
        first = events_pb2.Notification.FromString(entries[0].notice).recipient
        lines = [
            digest_line(number, e.kind, e.title, e.link)
            for number, e in enumerate(entries, start=1)
        ]
        digest_id = entries[0].digest_id
        quiet = self._deliverer.router.quiet
        rendered = (
            render_held_digest(first.group_name, lines, quiet.start, quiet.end)
            if any(entry.held_until is not None for entry in entries)
            else render_digest(first.group_name, lines)
        )
        message = Message(
            notification_id=digest_id,
            kind="NOTIFICATION_KIND_DIGEST",
            level=first.level,
            group_id=first.group_id,
            group_name=first.group_name,
            # The inbox and the webhooks carry the message, not its rendering: the digest whole.
            title=rendered.title,
            text=rendered.text,
            link="",
            task_id="",
            report_id="",
            report_accepted_at="",
        )
        # The group's robot or phone for this channel, as for any notice to the group.
        targets = self._deliverer.router.targets(message, rendered, first.phone)
        outgoing = next((o for c, o in targets if c.name == sender.name), None)
        if outgoing is None:
            await self._finish(sender.name, entries, storage.FAILED, _GONE, True)
            return
        try:
            await sender.send(outgoing)
        except TransientFailure as exc:
            # Back to waiting: the next tick, with budget, tries again.
            log.warning("digest not sent, will retry", channel=sender.name, error=str(exc))
            async with self._db.session() as session:
                await session.exec(
                    update(storage.DigestEntry)
                    .where(col(storage.DigestEntry.digest_id) == digest_id)
                    .values(digest_id="", claimed_at=None)
                )
            return
        except Exception as exc:
            await self._finish(sender.name, entries, storage.FAILED, str(exc), True)
            return
        metrics.DIGESTED.labels(sender.name).inc(len(entries))
        await self._finish(sender.name, entries, storage.DELIVERED, "", False)

    async def _finish(
        self,
        channel: str,
        entries: list[storage.DigestEntry],
        outcome: str,
        error: str,
        permanent: bool,
    ) -> None:
        """Settle every entry of a digest and drop it from the queue, in one transaction."""
        ids = [entry.notification_id for entry in entries]
        async with self._db.session() as session:
            rows = await storage.deliveries_among(session, ids)
            await self._deliverer.write(
                session,
                [
                    Settled(
                        notice=events_pb2.Notification.FromString(entry.notice),
                        channel=channel,
                        result=Outcome(
                            outcome,
                            rows.get((entry.notification_id, channel), ("", 0))[1] + 1,
                            error[:500],
                            permanent=permanent,
                        ),
                        at=self._deliverer.clock(),
                        last_try=error,
                    )
                    for entry in entries
                ],
            )
            await storage.drop_digest_entries(session, channel, ids)

    async def _expire_stale_claims(self, moment: datetime) -> None:
        async with self._db.session() as session:
            stale = await session.exec(
                select(storage.DigestEntry).where(
                    storage.DigestEntry.digest_id != "",
                    col(storage.DigestEntry.claimed_at) < moment - STALE_CLAIM,
                )
            )
            entries = list(stale.all())
        by_channel: dict[str, list[storage.DigestEntry]] = {}
        for entry in entries:
            by_channel.setdefault(entry.channel, []).append(entry)
        for channel, waiting in by_channel.items():
            await self._finish(
                channel,
                waiting,
                storage.UNKNOWN,
                "a replica died sending its digest; not resent to avoid a double",
                False,
            )


def _due(moment: datetime) -> ColumnElement[bool]:
    """Entries that may go at `moment`: over budget, or held until then or before."""
    held_until = col(storage.DigestEntry.held_until)
    return or_(held_until.is_(None), held_until <= moment)
