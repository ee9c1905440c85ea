"""Notify's personal data: every delivery row (the digest queue keeps whole notices, titles and
links; deliveries and attempts keep vendors' answers) goes once it was written longer ago than
the retention. Notify never learns when a case closes, so it counts from the writing; a notice
is delivered within minutes, long before that.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from gridline.bus.retention import PersonalData
from gridline.db import Database
from services.notify import storage

# Each table and the moment its row was written.
_WRITTEN = (
    (storage.DELIVERY, storage.DELIVERY.c.finished_at),
    (storage.ATTEMPT, storage.ATTEMPT.c.at),
    (storage.DIGEST_QUEUE, storage.DIGEST_QUEUE.c.queued_at),
    (storage.FIRST_DELIVERY, storage.FIRST_DELIVERY.c.delivered_at),
)


async def purge_deliveries(db: Database, cutoff: datetime) -> dict[str, int]:
    """Delete every delivery row written before `cutoff`; the rows deleted by table."""
    counts: dict[str, int] = {}
    async with db.session() as session:
        connection = await session.connection()
        for table, written in _WRITTEN:
            gone = await connection.execute(delete(table).where(written < cutoff))
            counts[table.name] = int(gone.rowcount or 0)
    return counts


PERSONAL_DATA = PersonalData("notify", storage.TABLES, (purge_deliveries,))
