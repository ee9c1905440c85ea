"""The reads behind the offices' register (台账) and daily picture (每日情况).

Each read is one query over a node's tasks (filtered on the task's place columns, as staff scope
is), however many rows: a county's busiest day is thousands of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, select, true
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.db import table_of
from services.escalation.domain import ENDED, UNDER_MEASURE, Action
from services.escalation.register import TaskFacts, Test
from services.escalation.storage import TASK, TaskChange, TestRecord, ZeroReport

_CHANGE = table_of(TaskChange)
_TEST = table_of(TestRecord)
_ZERO_REPORT = table_of(ZeroReport)

# The place columns a node is filtered on, by the level of the node.
PLACE_COLUMNS = ("township_id", "community_id", "grid_id")


def _on(field: str, node_id: str | None) -> ColumnElement[bool]:
    """The condition that a task lies under a node (`field` its level's column; None: all)."""
    return true() if node_id is None else TASK.c[field] == node_id


async def register_tasks(
    session: AsyncSession,
    field: str,
    node_id: str | None,
    since: datetime,
    *,
    measures_only: bool = False,
) -> list[TaskFacts]:
    """The tasks under a node whose report was accepted at or after `since` (an arrival on or
    after a day is reported no earlier than it); with `measures_only`, only those of people
    under a measure."""
    query = select(
        TASK.c.task_id, TASK.c.report_id, TASK.c.state, TASK.c.triage, TASK.c.origin_risk,
        TASK.c.measure, TASK.c.measure_name, TASK.c.measure_started_at, TASK.c.measure_ends_at,
        TASK.c.report_accepted_at, TASK.c.level, TASK.c.assignee_level,
    ).where(_on(field, node_id), TASK.c.report_accepted_at >= since)  # fmt: skip
    if measures_only:
        query = query.where(TASK.c.measure.is_not(None))
    connection = await session.connection()
    return [TaskFacts(**dict(row._mapping)) for row in await connection.execute(query)]


async def first_visits(
    session: AsyncSession, field: str, node_id: str | None, since: datetime
) -> dict[str, datetime]:
    """When each of those tasks was first verified at the door (its `record_visit` change)."""
    query = (
        select(_CHANGE.c.task_id, func.min(_CHANGE.c.changed_at))
        .join(TASK, TASK.c.task_id == _CHANGE.c.task_id)
        .where(
            _on(field, node_id),
            TASK.c.report_accepted_at >= since,
            _CHANGE.c.action == Action.RECORD_VISIT.value,
        )
        .group_by(_CHANGE.c.task_id)
    )
    connection = await session.connection()
    return {task_id: at for task_id, at in await connection.execute(query)}


async def tests_of(
    session: AsyncSession, field: str, node_id: str | None, since: datetime
) -> dict[str, list[Test]]:
    """The test results recorded for each of those tasks, oldest first."""
    query = (
        select(_TEST.c.task_id, _TEST.c.recorded_at, _TEST.c.result)
        .join(TASK, TASK.c.task_id == _TEST.c.task_id)
        .where(_on(field, node_id), TASK.c.report_accepted_at >= since)
        .order_by(_TEST.c.recorded_at)
    )
    found: dict[str, list[Test]] = defaultdict(list)
    connection = await session.connection()
    for task_id, at, result in await connection.execute(query):
        found[task_id].append(Test(at, result))
    return found


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """The tasks of one node below, of the reports accepted in a span, by what became of them.

    `by_risk` counts arrivals by origin risk (a RiskLevel number; 0 not decided); the rest are
    where those tasks stand now.
    """

    by_risk: dict[int, int]
    placed: int = 0
    under_measure: int = 0
    ended: int = 0
    overdue: int = 0

    @property
    def arrivals(self) -> int:
        """Every arrival of the span."""
        return sum(self.by_risk.values())


async def task_counts(
    session: AsyncSession,
    field: str,
    node_id: str | None,
    group: str,
    start: datetime,
    end: datetime,
    moment: datetime,
) -> dict[str, TaskCounts]:
    """By the column `group` (the nodes one level below), the tasks under a node whose report
    was accepted in [start, end): by origin risk, placed on a household, under a measure,
    ended, and overdue at `moment` (open, and past their deadline or gone up the chain)."""

    def counted(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((condition, 1), else_=0))

    open_ = TASK.c.state.not_in(list(ENDED))
    late = and_(
        open_,
        or_(TASK.c.deadline_at <= moment, TASK.c.level > TASK.c.assignee_level),
    )
    query = (
        select(
            TASK.c[group],
            TASK.c.origin_risk,
            func.count(),
            counted(TASK.c.triage.is_(False)),
            counted(TASK.c.state.in_(list(UNDER_MEASURE))),
            counted(TASK.c.state.in_(list(ENDED))),
            counted(late),
        )
        .where(
            _on(field, node_id),
            TASK.c.report_accepted_at >= start,
            TASK.c.report_accepted_at < end,
        )
        .group_by(TASK.c[group], TASK.c.origin_risk)
    )
    totals: dict[str, list[int]] = {}
    risks: dict[str, dict[int, int]] = defaultdict(dict)
    connection = await session.connection()
    for key, risk, count, placed, measure, ended, overdue in await connection.execute(query):
        risks[key][int(risk or 0)] = int(count)
        sums = totals.setdefault(key, [0, 0, 0, 0])
        for index, value in enumerate((placed, measure, ended, overdue)):
            sums[index] += int(value or 0)
    return {key: TaskCounts(risks[key], *sums) for key, sums in totals.items()}


async def zero_reports_filed(
    session: AsyncSession, grid_ids: Collection[str], first_day: str, last_day: str
) -> dict[str, int]:
    """How many daily zero-reports each of `grid_ids` filed from `first_day` to `last_day`
    (YYYY-MM-DD, both included)."""
    if not grid_ids:
        return {}
    query = (
        select(_ZERO_REPORT.c.grid_id, func.count())
        .where(
            _ZERO_REPORT.c.grid_id.in_(list(grid_ids)),
            _ZERO_REPORT.c.day >= first_day,
            _ZERO_REPORT.c.day <= last_day,
        )
        .group_by(_ZERO_REPORT.c.grid_id)
    )
    connection = await session.connection()
    return {grid_id: int(count) for grid_id, count in await connection.execute(query)}
