"""Escalation's personal data: a task closed for the retention goes whole, with every row of
its own (audit trail, escalations, check-ins and their slots: summaries, addresses, links,
temperatures and symptoms). A task still open keeps everything, however old.

A task counts as closed since its last change: nothing about it happened after the cutoff.
Zero reports stay; they are counts per grid, naming nobody.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select

from gridline.bus.retention import PURGE_CHUNK, PersonalData
from gridline.db import Database, table_of
from services.escalation import storage
from services.escalation.domain import TaskState

_TASK = storage.TASK
_CHANGE = table_of(storage.TaskChange)
# Every table with rows of a task, the task's own last: a table added later with a task_id
# column is purged with its task without anyone having to remember it here.
_OF_TASK = [t for t in storage.TABLES if "task_id" in t.c and t is not _TASK] + [_TASK]


async def purge_closed_tasks(db: Database, cutoff: datetime) -> dict[str, int]:
    """Delete the tasks closed before `cutoff` and every row of theirs, a chunk of tasks per
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
                            _TASK.c.state == TaskState.CLOSED.value,
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


PERSONAL_DATA = PersonalData("escalation", storage.TABLES, (purge_closed_tasks,))
