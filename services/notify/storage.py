"""Notify's delivery log: one row per notification and channel, and every attempt."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, and_, delete, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX_TABLES
from gridline.db import dialect, table_of, utc_timestamp

# A delivery is `sending` from just before the vendor call (robots, SMS vendors, and what quiet
# hours may hold) or from a failed try that will be retried, until its outcome is written.
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
# A crash fell between the call and its outcome on a channel that cannot recognise a resend.
UNKNOWN = "unknown"
# Over the robot's budget: waiting in the digest queue, to go out in the next digest.
QUEUED = "queued"
# In its recipient's quiet hours: waiting in the digest queue for their end (`held_until`).
HELD = "held"
FINAL = {DELIVERED, FAILED, UNKNOWN}
# A replay of the notification sends nothing for these.
SETTLED = FINAL | {QUEUED, HELD}


class Delivery(SQLModel, table=True):
    """One notification through one channel to its recipient: at most one row, one send."""

    __tablename__ = "delivery"

    notification_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    group_id: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    attempts: int
    error: str = Field(default="", max_length=500)
    finished_at: datetime = Field(sa_type=utc_timestamp())


class Attempt(SQLModel, table=True):
    """One try of one delivery and what the vendor said."""

    __tablename__ = "delivery_attempt"

    notification_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    number: int = Field(primary_key=True)
    at: datetime = Field(sa_type=utc_timestamp())
    ok: bool
    error: str = Field(default="", max_length=500)


class DigestEntry(SQLModel, table=True):
    """A notification waiting for its robot's budget or for the end of its recipient's quiet
    hours; a digest takes it exactly once."""

    __tablename__ = "digest_queue"

    notification_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    group_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=64)
    title: str = Field(max_length=500)
    link: str = Field(max_length=500)
    # The notification as it arrived, for its dead letter should the digest fail for good.
    notice: bytes
    queued_at: datetime = Field(sa_type=utc_timestamp())
    # Held for quiet hours: not to be sent before this (None: as soon as the budget allows).
    held_until: datetime | None = Field(default=None, sa_type=utc_timestamp(), index=True)
    # The digest that took it ("" while waiting), and when, so a replica's crash is recognised.
    digest_id: str = Field(default="", max_length=64, index=True)
    claimed_at: datetime | None = Field(default=None, sa_type=utc_timestamp())


class FirstDelivery(SQLModel, table=True):
    """The first delivery about a report, claimed once across replicas to time it once."""

    __tablename__ = "report_first_delivery"

    report_id: str = Field(primary_key=True, max_length=64)
    notification_id: str = Field(max_length=64)
    channel: str = Field(max_length=32)
    delivered_at: datetime = Field(sa_type=utc_timestamp())


DELIVERY: Table = table_of(Delivery)
ATTEMPT: Table = table_of(Attempt)
DIGEST_QUEUE: Table = table_of(DigestEntry)
FIRST_DELIVERY: Table = table_of(FirstDelivery)

# This service's Alembic revisions (`gridline.db.Database` upgrades to the newest at start).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
    *OUTBOX_TABLES,
    DELIVERY,
    ATTEMPT,
    DIGEST_QUEUE,
    FIRST_DELIVERY,
]

# A delivery's key: (notification id, channel).
Key = tuple[str, str]
# Ids per IN list: well inside every driver's limit on bound parameters.
_IN_CHUNK = 1_000


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield list(ids[start : start + _IN_CHUNK])


def _insert_new(session: AsyncSession, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT of `table` for this session's dialect, ready for ON CONFLICT."""
    maker = sqlite.insert if dialect(session) == "sqlite" else postgresql.insert
    return maker(table)


async def deliveries_among(
    session: AsyncSession, notification_ids: Collection[str]
) -> dict[Key, tuple[str, int]]:
    """Outcome and attempts of every delivery of these notifications, by key."""
    found: dict[Key, tuple[str, int]] = {}
    d = DELIVERY.c
    for chunk in _chunks(sorted(notification_ids)):
        rows = await session.exec(
            select(d.notification_id, d.channel, d.outcome, d.attempts).where(
                d.notification_id.in_(chunk)
            )
        )
        for nid, channel, outcome, attempts in rows.all():
            found[(nid, channel)] = (outcome, attempts)
    return found


async def open_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """Insert delivery rows (`sending` before a call or with a failed try, `held` for quiet
    hours) in one statement; the keys inserted (another writer's are skipped)."""
    if not rows:
        return set()
    d = DELIVERY.c
    statement = (
        _insert_new(session, DELIVERY)
        .on_conflict_do_nothing(index_elements=["notification_id", "channel"])
        .returning(d.notification_id, d.channel)
    )
    created = await session.exec(statement, params=list(rows))
    return {(nid, channel) for nid, channel in created.all()}


async def attempt_counts(session: AsyncSession, keys: Collection[Key]) -> dict[Key, int]:
    """How many attempts each delivery has had (those with none are absent)."""
    a = ATTEMPT.c
    wanted = set(keys)
    counts: dict[Key, int] = {}
    for chunk in _chunks(sorted({nid for nid, _ in wanted})):
        rows = await session.exec(
            select(a.notification_id, a.channel, func.count())
            .where(a.notification_id.in_(chunk))
            .group_by(a.notification_id, a.channel)
        )
        for nid, channel, count in rows.all():
            if (nid, channel) in wanted:
                counts[(nid, channel)] = count
    return counts


async def record_attempts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert attempt rows (notification_id, channel, number, at, ok, error) in one statement;
    a number already recorded (by another replica making the same delivery) is kept."""
    if rows:
        statement = _insert_new(session, ATTEMPT).on_conflict_do_nothing(
            index_elements=["notification_id", "channel", "number"]
        )
        await session.exec(statement, params=list(rows))


async def settle_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write delivery outcomes in one statement, over the row where there is one.

    Each row holds notification_id, channel, group_id, outcome, attempts, error and
    finished_at. An idempotent channel's delivery may have no row before its outcome (see
    `services.notify.consumers`): it is inserted. A row already settled for good (delivered,
    failed, unknown: by another replica making the same delivery) is kept.
    """
    if not rows:
        return
    statement = _insert_new(session, DELIVERY)
    statement = statement.on_conflict_do_update(
        index_elements=["notification_id", "channel"],
        set_={
            "outcome": statement.excluded.outcome,
            "attempts": statement.excluded.attempts,
            "error": statement.excluded.error,
            "finished_at": statement.excluded.finished_at,
        },
        # Not an IN list: its expanding parameter is refused in a statement executed for many.
        where=and_(*(DELIVERY.c.outcome != outcome for outcome in sorted(FINAL))),
    )
    await session.exec(statement, params=list(rows))


async def queue_for_digest(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert digest entries (DigestEntry's columns) in one statement."""
    if rows:
        await session.exec(insert(DIGEST_QUEUE), params=list(rows))


async def drop_digest_entries(
    session: AsyncSession, channel: str, notification_ids: Sequence[str]
) -> None:
    """Remove the digest entries of these notifications on `channel`."""
    q = DIGEST_QUEUE.c
    for chunk in _chunks(notification_ids):
        await session.exec(
            delete(DIGEST_QUEUE).where(q.channel == channel, q.notification_id.in_(chunk))
        )


async def claim_first_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Record reports' first deliveries (FirstDelivery's columns, one row per report) in one
    statement; the reports claimed now, not before by any replica."""
    if not rows:
        return set()
    # A concurrent claim by another replica is skipped, not raised.
    statement = (
        _insert_new(session, FIRST_DELIVERY)
        .on_conflict_do_nothing(index_elements=["report_id"])
        .returning(FIRST_DELIVERY.c.report_id)
    )
    claimed = await session.exec(statement, params=list(rows))
    return set(claimed.scalars().all())


async def delivery(session: AsyncSession, notification_id: str, channel: str) -> Delivery | None:
    """The delivery row of one notification through one channel."""
    return await session.get(Delivery, (notification_id, channel))


async def deliveries_of(session: AsyncSession, notification_id: str) -> list[Delivery]:
    """Every delivery of a notification."""
    rows = await session.exec(select(Delivery).where(Delivery.notification_id == notification_id))
    return list(rows.all())


async def deliveries_with_attempts(
    session: AsyncSession, notification_id: str
) -> list[tuple[Delivery, list[Attempt]]]:
    """Every delivery of a notification with its own attempts."""
    attempts = await attempts_of(session, notification_id)
    return [
        (row, [a for a in attempts if a.channel == row.channel])
        for row in await deliveries_of(session, notification_id)
    ]


async def attempts_of(session: AsyncSession, notification_id: str) -> list[Attempt]:
    """Every attempt at a notification, in order per channel."""
    rows = await session.exec(
        select(Attempt)
        .where(Attempt.notification_id == notification_id)
        .order_by(col(Attempt.channel), col(Attempt.number))
    )
    return list(rows.all())
