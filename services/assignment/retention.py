"""Assignment's personal data: a closed case's placements and sealed ID numbers and phones go
once the case has been closed for the retention; an open case keeps them, however old.

The reveal audit stays: it holds who asked, when and why, never a revealed value.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from gridline.bus.retention import PURGE_CHUNK, PersonalData
from gridline.db import Database
from services.assignment import storage
from services.assignment.sealed import SEALED_PERSON

_PLACEMENT = storage.PLACEMENT


async def purge_closed_cases(db: Database, cutoff: datetime) -> dict[str, int]:
    """Delete the placements of cases closed before `cutoff` and their reports' sealed fields,
    a chunk of reports per transaction; the rows deleted by table."""
    counts = {_PLACEMENT.name: 0, SEALED_PERSON.name: 0}
    while True:
        async with db.session() as session:
            connection = await session.connection()
            report_ids = list(
                (
                    await connection.execute(
                        select(_PLACEMENT.c.report_id)
                        .where(_PLACEMENT.c.completed_at < cutoff)
                        .limit(PURGE_CHUNK)
                    )
                ).scalars()
            )
            if not report_ids:
                return counts
            for table in (SEALED_PERSON, _PLACEMENT):
                gone = await connection.execute(
                    delete(table).where(table.c.report_id.in_(report_ids))
                )
                counts[table.name] += int(gone.rowcount or 0)


PERSONAL_DATA = PersonalData("assignment", storage.TABLES, (purge_closed_cases,))
