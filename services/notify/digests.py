"""Digests: messages a robot had no budget for go out merged, each exactly once.

Every replica runs a digester. Each tick it looks for groups with waiting entries, takes one send
from the robot's budget, claims the oldest entries that fit one message (a conditional update, so
two replicas never claim the same entry), sends them as one digest and settles its entries in one
transaction, which also stages their events in the outbox and drops them from the queue. A
replica that died holding a claim leaves it; after `STALE_CLAIM` another marks those entries
`unknown` rather than risk a double (robots cannot recognise a resend).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, update
from sqlmodel import col, select

from gridline.contracts.v1 import events_pb2
from gridline.db import Database
from gridline.logging import get_logger
from gridline.timestamps import now
from gridline.workers import PeriodicWorker
from services.notify import metrics, storage
from services.notify.channels.base import Channel, Message, Outgoing, TransientFailure
from services.notify.consumers import Deliverer, Outcome, Settled
from services.notify.groups import Robot
from services.notify.templates import DIGEST_LIMIT_BYTES, digest_line, render_digest

log = get_logger(__name__)

STALE_CLAIM = timedelta(minutes=5)
_LOOK_AHEAD = 60


class Digester(PeriodicWorker):
    """Sends waiting entries as digests within each robot's budget, one flush per tick."""

    name = "notify digester"

    def __init__(self, deliverer: Deliverer, db: Database, tick_seconds: float = 1.0) -> None:
        self._deliverer = deliverer
        self._db = db
        super().__init__(tick_seconds)

    async def run_pass(self) -> None:
        """Flush what the budgets allow now."""
        await self.flush()

    async def flush(self) -> int:
        """Send what budgets allow now; the number of digests sent."""
        await self._expire_stale_claims()
        async with self._db.session() as session:
            waiting = await session.exec(
                select(storage.DigestEntry.group_id, storage.DigestEntry.channel)
                .where(storage.DigestEntry.digest_id == "")
                .distinct()
            )
            pairs = list(waiting.all())
        metrics.DIGEST_QUEUE.set(await self._depth())
        sent = 0
        for group_id, channel_name in pairs:
            robot = self._deliverer.router.config.group(group_id).robot
            channel = self._deliverer.router.robots.get(channel_name)
            if robot is None or channel is None or robot.kind != channel_name:
                continue
            if not await self._deliverer.budget.take(robot.kind, robot.robot_id):
                continue
            entries = await self._claim(group_id, channel_name)
            if entries:
                await self._send(channel, robot, entries)
                sent += 1
        return sent

    async def _depth(self) -> int:
        async with self._db.session() as session:
            counted = await session.exec(select(func.count()).select_from(storage.DigestEntry))
            return counted.one()

    async def _claim(self, group_id: str, channel: str) -> list[storage.DigestEntry]:
        digest_id = uuid.uuid4().hex
        async with self._db.session() as session:
            oldest = await session.exec(
                select(storage.DigestEntry)
                .where(
                    storage.DigestEntry.group_id == group_id,
                    storage.DigestEntry.channel == channel,
                    storage.DigestEntry.digest_id == "",
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
                .values(digest_id=digest_id, claimed_at=now())
            )
        async with self._db.session() as session:
            claimed = await session.exec(
                select(storage.DigestEntry)
                .where(storage.DigestEntry.digest_id == digest_id)
                .order_by(col(storage.DigestEntry.queued_at))
            )
            return list(claimed.all())

    async def _send(
        self, sender: Channel, robot: Robot, entries: list[storage.DigestEntry]
    ) -> None:
        first = events_pb2.Notification.FromString(entries[0].notice).recipient
        lines = [
            digest_line(number, e.kind, e.title, e.link)
            for number, e in enumerate(entries, start=1)
        ]
        digest_id = entries[0].digest_id
        message = Message(
            notification_id=digest_id,
            kind="NOTIFICATION_KIND_DIGEST",
            level=first.level,
            group_id=first.group_id,
            group_name=first.group_name,
            title="",
            text="",
            link="",
            task_id="",
            report_id="",
            report_accepted_at="",
        )
        outgoing = Outgoing(
            message=message, rendered=render_digest(first.group_name, lines), robot=robot
        )
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
                        at=now(),
                        last_try=error,
                    )
                    for entry in entries
                ],
            )
            await storage.drop_digest_entries(session, channel, ids)

    async def _expire_stale_claims(self) -> None:
        async with self._db.session() as session:
            stale = await session.exec(
                select(storage.DigestEntry).where(
                    storage.DigestEntry.digest_id != "",
                    col(storage.DigestEntry.claimed_at) < now() - STALE_CLAIM,
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
