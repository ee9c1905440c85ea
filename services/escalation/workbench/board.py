"""What the task board and the triage queue show: rules and queries, no HTTP.

The board lists the tasks under a person's node, those past their deadline first, then by the
next deadline; filters narrow it by state, decided risk, the node one level below the person's
(a county by township, a township by community, a community by grid) and a word of the summary.
The triage queue holds the tasks an office must place by hand: in state triage, or handed up
from a community as outside its area and not yet placed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.contracts.v1 import common_pb2
from gridline.staff.identity import Staff
from gridline.staff.roles import Level
from services.escalation import storage
from services.escalation.domain import TaskState

# The most rows one board shows; filters narrow it further.
BOARD_LIMIT = 200
# The level below each person's level the board's place filter lists, and the task column.
BELOW: dict[Level, tuple[str, str]] = {
    Level.COUNTY: ("township", "township_id"),
    Level.TOWNSHIP: ("community", "community_id"),
    Level.COMMUNITY: ("grid", "grid_id"),
}


@dataclass(frozen=True)
class Filters:
    """What the board is narrowed by; "" leaves a filter out."""

    state: str = ""
    risk: int = 0
    place: str = ""
    text: str = ""


def _scoped(staff: Staff):  # type: ignore[no-untyped-def]
    query = select(storage.Task)
    field = staff.place_field
    return query if field is None else query.where(getattr(storage.Task, field) == staff.node_id)


def overdue(task: storage.Task, moment: datetime) -> bool:
    """Whether the task's next deadline has passed."""
    due = next_deadline(task)
    return due is not None and due < moment


def next_deadline(task: storage.Task) -> datetime | None:
    """The next moment something is due: acknowledging, else verifying by the visit."""
    return task.deadline_at or task.verify_by


async def board(
    session: AsyncSession,
    staff: Staff,
    filters: Filters,
    moment: datetime,
    *,
    measures_only: bool = False,
) -> Sequence[storage.Task]:
    """The person's tasks as the board lists them: overdue first, then by next deadline."""
    task = storage.Task
    query = _scoped(staff)
    if filters.state:
        query = query.where(task.state == filters.state)
    if filters.risk:
        query = query.where(task.origin_risk == filters.risk)
    below = BELOW.get(staff.level)
    if filters.place and below is not None:
        query = query.where(getattr(task, below[1]) == filters.place)
    if filters.text:
        query = query.where(col(task.summary).contains(filters.text, autoescape=True))
    if measures_only:
        query = query.where(col(task.measure).is_not(None))
    due = case((col(task.deadline_at).is_not(None), task.deadline_at), else_=task.verify_by)
    late = case((due < moment, 0), else_=1)
    query = query.order_by(late, due.is_(None), due, col(task.created_at).desc())
    found: Sequence[storage.Task] = (await session.exec(query.limit(BOARD_LIMIT))).all()
    return found


async def triage_queue(
    session: AsyncSession, staff: Staff, authority: int
) -> Sequence[storage.Task]:
    """The tasks the person's office must place by hand, oldest first: in state triage, or
    handed up above the community as outside its area (to an office at or below the person's
    `authority`, a chain level) and not yet placed on a household."""
    task = storage.Task
    handed_up = and_(
        col(task.state) == TaskState.ASSIGNED,
        col(task.triage),
        col(task.assignee_level) > common_pb2.CHAIN_LEVEL_COMMUNITY,
        col(task.assignee_level) <= authority,
    )
    query = _scoped(staff).where(or_(col(task.state) == TaskState.TRIAGE, handed_up))
    query = query.order_by(col(task.report_accepted_at))
    found: Sequence[storage.Task] = (await session.exec(query.limit(BOARD_LIMIT))).all()
    return found
