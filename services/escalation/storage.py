"""Escalation's tables and the reads and writes on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Table
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.db import utc_timestamp


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class Task(SQLModel, table=True):
    """A follow-up task and where it stands."""

    __tablename__ = "task"

    task_id: str = Field(primary_key=True, max_length=64)
    report_id: str = Field(max_length=64, index=True)
    node_id: str = Field(max_length=64)
    grid_id: str = Field(max_length=64)
    triage: bool
    state: str = Field(max_length=20)
    level: int
    assignee_group_id: str = Field(max_length=64)
    summary: str = Field(max_length=500)
    link: str = Field(max_length=300)
    report_accepted_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]
    created_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]
    deadline_at: datetime | None = Field(
        default=None,
        sa_type=utc_timestamp(),
        index=True,  # type: ignore[call-overload]
    )
    acknowledged_at: datetime | None = Field(default=None, sa_type=utc_timestamp())  # type: ignore[call-overload]


class Escalation(SQLModel, table=True):
    """An escalation raised for a task."""

    __tablename__ = "escalation"

    escalation_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(max_length=64, index=True)
    level: int
    reason: str = Field(max_length=200)
    group_id: str = Field(max_length=64)
    raised_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]


TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
    Task.__table__,  # type: ignore[attr-defined]
    Escalation.__table__,  # type: ignore[attr-defined]
]


async def get_task(session: AsyncSession, task_id: str, *, for_update: bool = False) -> Task | None:
    """One task, locked for the transaction when asked."""
    query = select(Task).where(Task.task_id == task_id)
    if for_update:
        query = query.with_for_update()
    task = (await session.exec(query)).first()
    if task is not None:
        task.deadline_at = _utc(task.deadline_at)
        task.acknowledged_at = _utc(task.acknowledged_at)
        task.report_accepted_at = _utc(task.report_accepted_at)  # type: ignore[assignment]
    return task


async def tasks_of_report(session: AsyncSession, report_id: str) -> Sequence[Task]:
    """The tasks a report became, oldest first."""
    query = select(Task).where(Task.report_id == report_id).order_by(col(Task.created_at))
    tasks = (await session.exec(query)).all()
    for task in tasks:
        task.deadline_at = _utc(task.deadline_at)
        task.acknowledged_at = _utc(task.acknowledged_at)
    return tasks


async def due_tasks(session: AsyncSession, now: datetime, limit: int) -> Sequence[Task]:
    """Tasks whose deadline passed, locked and skipped by other replicas (PostgreSQL)."""
    query = (
        select(Task)
        .where(col(Task.deadline_at).is_not(None), col(Task.deadline_at) <= now)
        .order_by(col(Task.deadline_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    tasks = (await session.exec(query)).all()
    for task in tasks:
        task.report_accepted_at = _utc(task.report_accepted_at)  # type: ignore[assignment]
    return tasks


async def list_tasks(
    session: AsyncSession, *, state: str | None, limit: int, offset: int
) -> Sequence[Task]:
    """Tasks newest first, optionally of one state."""
    query = select(Task).order_by(col(Task.created_at).desc()).limit(limit).offset(offset)
    if state:
        query = query.where(Task.state == state)
    return (await session.exec(query)).all()


async def escalations_of(session: AsyncSession, task_id: str) -> Sequence[Escalation]:
    """The escalations raised for a task, oldest first."""
    query = select(Escalation).where(Escalation.task_id == task_id).order_by(col(Escalation.level))
    return (await session.exec(query)).all()
