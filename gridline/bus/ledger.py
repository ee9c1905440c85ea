"""The processed-events ledger: consumers skip event ids already applied."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, insert, select
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.db import utc_timestamp
from gridline.timestamps import now


class ProcessedEvent(SQLModel, table=True):
    """An event a consumer group applied, written in the same transaction as its effect."""

    __tablename__ = "processed_event"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=100)
    processed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_type=utc_timestamp(),  # type: ignore[call-overload]
        index=True,
    )


PROCESSED_EVENT_TABLE: Table = ProcessedEvent.__table__  # type: ignore[attr-defined]
_LEDGER = PROCESSED_EVENT_TABLE


async def already_processed(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Whether this consumer group has applied the event."""
    return bool(await processed_among(session, consumer, [event_id]))


async def processed_among(
    session: AsyncSession, consumer: str, event_ids: Collection[str]
) -> set[str]:
    """Which of the event ids this consumer group has applied, in one query."""
    if not event_ids:
        return set()
    found = await session.exec(
        select(_LEDGER.c.event_id).where(
            _LEDGER.c.consumer == consumer, _LEDGER.c.event_id.in_(list(event_ids))
        )
    )
    return set(found.scalars().all())


def mark_processed(session: AsyncSession, consumer: str, event_id: str) -> None:
    """Record the event as applied (commits with the caller's transaction)."""
    session.add(ProcessedEvent(consumer=consumer, event_id=event_id))


async def mark_all_processed(
    session: AsyncSession, consumer: str, event_ids: Collection[str]
) -> None:
    """Record events as applied in one statement (commits with the caller's transaction)."""
    if not event_ids:
        return
    moment = now()
    await session.exec(
        insert(_LEDGER),
        params=[{"consumer": consumer, "event_id": e, "processed_at": moment} for e in event_ids],
    )


async def purge(session: AsyncSession, retention_seconds: int) -> int:
    """Forget events applied longer ago than the retention; returns how many rows went."""
    cutoff = now() - timedelta(seconds=retention_seconds)
    result = await session.exec(delete(_LEDGER).where(_LEDGER.c.processed_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
