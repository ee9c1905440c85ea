"""Notify's delivery log: one row per notification and channel, and every attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.db import Database, utc_timestamp

# A delivery is `sending` from just before the vendor call until its outcome is written.
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
# A crash fell between the call and its outcome on a channel that cannot recognise a resend.
UNKNOWN = "unknown"
# Over the robot's budget: waiting in the digest queue, to go out in the next digest.
QUEUED = "queued"
FINAL = {DELIVERED, FAILED, UNKNOWN}
# A replay of the notification sends nothing for these.
SETTLED = FINAL | {QUEUED}


class Delivery(SQLModel, table=True):
    """One notification through one channel to its recipient: at most one row, one send."""

    __tablename__ = "delivery"

    notification_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    group_id: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    attempts: int
    error: str = Field(default="", max_length=500)
    finished_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]


class Attempt(SQLModel, table=True):
    """One try of one delivery and what the vendor said."""

    __tablename__ = "delivery_attempt"

    notification_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    number: int = Field(primary_key=True)
    at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]
    ok: bool
    error: str = Field(default="", max_length=500)


class DigestEntry(SQLModel, table=True):
    """A notification waiting for its robot's budget; a digest takes it exactly once."""

    __tablename__ = "digest_queue"

    notification_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    group_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=64)
    title: str = Field(max_length=500)
    link: str = Field(max_length=500)
    # The notification as it arrived, for its dead letter should the digest fail for good.
    notice: bytes
    queued_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]
    # The digest that took it ("" while waiting), and when, so a replica's crash is recognised.
    digest_id: str = Field(default="", max_length=64, index=True)
    claimed_at: datetime | None = Field(default=None, sa_type=utc_timestamp())  # type: ignore[call-overload]


class FirstDelivery(SQLModel, table=True):
    """The first delivery about a report, claimed once across replicas to time it once."""

    __tablename__ = "report_first_delivery"

    report_id: str = Field(primary_key=True, max_length=64)
    notification_id: str = Field(max_length=64)
    channel: str = Field(max_length=32)
    delivered_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]


TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
    Delivery.__table__,  # type: ignore[attr-defined]
    Attempt.__table__,  # type: ignore[attr-defined]
    DigestEntry.__table__,  # type: ignore[attr-defined]
    FirstDelivery.__table__,  # type: ignore[attr-defined]
]


async def claim_first_delivery(db: Database, first: FirstDelivery) -> bool:
    """Record the report's first delivery; False when one was recorded before (any replica)."""
    # One statement: a concurrent claim by another replica is skipped, not raised.
    insert = (sqlite.insert if db.is_sqlite else postgresql.insert)(FirstDelivery)
    statement = (
        insert.values(
            report_id=first.report_id,
            notification_id=first.notification_id,
            channel=first.channel,
            delivered_at=first.delivered_at,
        )
        .on_conflict_do_nothing(index_elements=["report_id"])
        .returning(col(FirstDelivery.report_id))
    )
    async with db.session() as session:
        claimed = await session.exec(statement)
        return claimed.first() is not None


async def delivery(session: AsyncSession, notification_id: str, channel: str) -> Delivery | None:
    """The delivery row of one notification through one channel."""
    return await session.get(Delivery, (notification_id, channel))


async def settle_delivery(
    session: AsyncSession,
    notification_id: str,
    channel: str,
    *,
    outcome: str,
    attempts: int,
    error: str,
    finished_at: datetime,
) -> None:
    """Write the outcome of an existing delivery row (one UPDATE, no read first)."""
    result = await session.exec(
        update(Delivery)
        .where(
            col(Delivery.notification_id) == notification_id,
            col(Delivery.channel) == channel,
        )
        .values(outcome=outcome, attempts=attempts, error=error, finished_at=finished_at)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LookupError(f"no delivery of {notification_id} through {channel} to settle")


async def attempt_count(session: AsyncSession, notification_id: str, channel: str) -> int:
    """How many attempts one delivery has had."""
    counted = await session.exec(
        select(func.count()).where(
            col(Attempt.notification_id) == notification_id, col(Attempt.channel) == channel
        )
    )
    return counted.one()


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
        .order_by(Attempt.channel, Attempt.number)  # type: ignore[arg-type]
    )
    return list(rows.all())
