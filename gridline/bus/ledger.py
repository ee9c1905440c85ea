"""The processed-events ledger: consumers skip event ids already applied."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.db import utc_timestamp


class ProcessedEvent(SQLModel, table=True):
    """An event a consumer group applied, written in the same transaction as its effect."""

    __tablename__ = "processed_event"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=100)
    processed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_type=utc_timestamp(),  # type: ignore[call-overload]
    )


PROCESSED_EVENT_TABLE: Table = ProcessedEvent.__table__  # type: ignore[attr-defined]


async def already_processed(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Whether this consumer group has applied the event."""
    found = await session.exec(
        select(ProcessedEvent.event_id).where(
            ProcessedEvent.consumer == consumer, ProcessedEvent.event_id == event_id
        )
    )
    return found.first() is not None


def mark_processed(session: AsyncSession, consumer: str, event_id: str) -> None:
    """Record the event as applied (commits with the caller's transaction)."""
    session.add(ProcessedEvent(consumer=consumer, event_id=event_id))
