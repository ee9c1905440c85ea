"""Notify's delivery log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.db import utc_timestamp


class Delivery(SQLModel, table=True):
    """One notification through one channel: at most one row, so at most one send."""

    __tablename__ = "delivery"

    notification_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    group_id: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    attempts: int
    error: str = Field(default="", max_length=500)
    finished_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]


TABLES: list[Table] = [PROCESSED_EVENT_TABLE, Delivery.__table__]  # type: ignore[attr-defined]


async def delivered_channels(session: AsyncSession, notification_id: str) -> set[str]:
    """Channels that already have a delivery for this notification."""
    rows = await session.exec(
        select(Delivery.channel).where(Delivery.notification_id == notification_id)
    )
    return set(rows.all())


async def deliveries_of(session: AsyncSession, notification_id: str) -> list[Delivery]:
    """Every delivery of a notification."""
    rows = await session.exec(select(Delivery).where(Delivery.notification_id == notification_id))
    return list(rows.all())
