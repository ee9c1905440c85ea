"""Escalation's personal data: a task ended for the retention (closed, left again, moved to
hospital or central isolation) goes whole, with every row of its own (audit trail,
escalations, check-ins and their slots, timers and test results: summaries, addresses, links,
temperatures and symptoms). A task still open keeps everything, however old.

A task counts as ended since its last change: nothing about it happened after the cutoff.
Household visits older than the retention go too (their notes are free text a cadre wrote at
the door). Zero reports and visit rounds stay; they are counts per grid, naming nobody.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select

from gridline.bus.retention import PURGE_CHUNK, PersonalData
from gridline.db import Database, table_of
from services.escalation import storage
from services.escalation.domain import ENDED

_TASK = storage.TASK
_CHANGE = table_of(storage.TaskChange)
# Every table with rows of a task, the task's own last: a table added later with a task_id
# column is purged with its task without anyone having to remember it here.
_OF_TASK = [t for t in storage.TABLES if "task_id" in t.c and t is not _TASK] + [_TASK]
_VISIT = table_of(storage.HouseholdVisit)


async def purge_ended_tasks(db: Database, cutoff: datetime) -> dict[str, int]:
    """Delete the tasks ended before `cutoff` and every row of theirs, a chunk of tasks per
    transaction; the rows deleted by table."""
    counts = dict.fromkeys((table.name for table in _OF_TASK), 0)
    changed_since = exists().where(
        _CHANGE.c.task_id == _TASK.c.task_id, _CHANGE.c.changed_at >= cutoff
    )
    while True:
        async with db.session() as session:
            connection = await session.connection()
            task_ids = list(
                (
                    await connection.execute(
                        select(_TASK.c.task_id)
                        .where(
                            _TASK.c.state.in_([state.value for state in ENDED]),
                            _TASK.c.created_at < cutoff,
                            ~changed_since,
                        )
                        .limit(PURGE_CHUNK)
                    )
                ).scalars()
            )
            if not task_ids:
                return counts
            for table in _OF_TASK:
                gone = await connection.execute(delete(table).where(table.c.task_id.in_(task_ids)))
                counts[table.name] += int(gone.rowcount or 0)


async def purge_visits(db: Database, cutoff: datetime) -> dict[str, int]:
    """Delete the household visits made before `cutoff`; the rows deleted by table."""
    async with db.session() as session:
        connection = await session.connection()
        gone = await connection.execute(delete(_VISIT).where(_VISIT.c.visited_at < cutoff))
    return {_VISIT.name: int(gone.rowcount or 0)}


PERSONAL_DATA = PersonalData("escalation", storage.TABLES, (purge_ended_tasks, purge_visits))
