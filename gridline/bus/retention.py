"""Forgetting what is old: ledger marks and published outbox rows past their retention, and
every service's personal data past the personal-data retention.

`Retention` keeps the ledger and the outbox small by their own retentions (days). Personal data
has a bound of its own, `GRIDLINE_PERSONAL_DATA_RETENTION_DAYS`, counted from when a case or
task closes, or from when a row was written where nothing closes: each service names what it
holds and how it goes (`PersonalData`), its `PersonalDataRetention` worker purges it hourly and
`gridline purge` does it at once. Outbox and ledger rows go by that bound too, whatever their
own retentions say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Table, delete, inspect
from sqlalchemy.engine import make_url

from gridline.bus import ledger
from gridline.bus.outbox import OUTBOX, Outbox, purge_published_before
from gridline.db import Database
from gridline.logging import get_logger
from gridline.metrics import PERSONAL_DATA_PURGED, RETENTION_PURGED
from gridline.settings import ServiceName, Settings
from gridline.timestamps import now
from gridline.workers import PeriodicWorker

log = get_logger(__name__)


class Retention(PeriodicWorker):
    """Purges a service's ledger and outbox once a minute.

    Settings keep the replay window within both retentions, so a replayed event always finds
    its ledger mark.
    """

    name = "retention"

    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox | None, tick: float = 60.0
    ) -> None:
        super().__init__(tick)
        self._db = db
        self._outbox = outbox
        self._ledger_seconds = settings.ledger_retention_seconds
        self._outbox_seconds = settings.outbox_retention_seconds

    async def run_pass(self) -> None:
        """One purge of each table the service has (a service that consumes nothing has no
        ledger)."""
        if self._db.has_table(ledger.PROCESSED_EVENT_TABLE.name):
            async with self._db.session() as session:
                RETENTION_PURGED.labels("processed_event").inc(
                    await ledger.purge(session, self._ledger_seconds)
                )
        if self._outbox is not None:
            RETENTION_PURGED.labels("outbox").inc(await self._outbox.purge(self._outbox_seconds))


# Ids per transaction when a purge takes whole cases or tasks: short transactions, and IN lists
# well inside every driver's limit on bound parameters.
PURGE_CHUNK = 1_000

_LEDGER = ledger.PROCESSED_EVENT_TABLE

# One part of a service's purge: deletes what is older than the cutoff, in transactions of its
# own, and returns the rows deleted by table.
Purge = Callable[[Database, datetime], Awaitable[dict[str, int]]]


def personal_data_cutoff(settings: Settings, moment: datetime) -> datetime:
    """Personal data closed or written before this moment is past its retention."""
    return moment - timedelta(days=settings.personal_data_retention_days)


@dataclass(frozen=True)
class PersonalData:
    """What one service holds about people, and how it is purged.

    `purges` are the service's own (closed cases, closed tasks, deliveries); the outbox (whose
    rows are the events, sealed fields and addresses included) and the ledger go by the same
    cutoff whatever they are waiting for. Each service exports one
    (`services/<name>/retention.py`), which its worker and `gridline purge` both run.
    """

    service: ServiceName
    tables: Sequence[Table]
    purges: Sequence[Purge] = ()

    def database(self, settings: Settings) -> Database:
        """The service's database, neither created nor migrated (the service does that)."""
        return Database(settings, self.service, self.tables)

    async def present(self, db: Database) -> bool:
        """Whether the service's database holds every table of this release (a database no
        service has started yet, or one of an older release, is left alone)."""
        if db.is_sqlite:
            path = make_url(db.url).database
            if not path or not await asyncio.to_thread(Path(path).exists):
                return False
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names(db.schema))
        return all(table.name in names for table in self.tables)

    async def purge(self, db: Database, cutoff: datetime) -> dict[str, int]:
        """Delete everything past the cutoff; the rows deleted by table."""
        counts: dict[str, int] = {}
        for purge in self.purges:
            counts.update(await purge(db, cutoff))
        names = {table.name for table in self.tables}
        if OUTBOX.name in names:
            counts.update(await _purge_outbox(db, cutoff))
        if ledger.PROCESSED_EVENT_TABLE.name in names:
            async with db.session() as session:
                counts[_LEDGER.name] = await ledger.purge_before(session, cutoff)
        return counts


async def _purge_outbox(db: Database, cutoff: datetime) -> dict[str, int]:
    """Outbox rows older than the cutoff, published or not: an event still unpublished after
    the whole retention is of no use to anyone, and the law's bound wins; it is logged."""
    async with db.session() as session:
        published = await purge_published_before(session, cutoff)
        unpublished = await session.exec(
            delete(OUTBOX).where(OUTBOX.c.created_at < cutoff, OUTBOX.c.published_at.is_(None))
        )
    dropped = int(unpublished.rowcount or 0)
    if dropped:
        log.warning(
            "outbox rows never published are past the personal-data retention; purged", rows=dropped
        )
    return {OUTBOX.name: published + dropped}


class PersonalDataRetention(PeriodicWorker):
    """Purges a service's personal data past `GRIDLINE_PERSONAL_DATA_RETENTION_DAYS`, hourly.

    Every replica runs one; their deletes of the same rows are harmless to each other.
    """

    name = "personal data retention"

    def __init__(
        self, db: Database, settings: Settings, personal: PersonalData, tick: float = 3600.0
    ) -> None:
        super().__init__(tick)
        self._db = db
        self._settings = settings
        self._personal = personal

    async def run_pass(self) -> None:
        """One purge of everything past the retention now."""
        counts = await self._personal.purge(self._db, personal_data_cutoff(self._settings, now()))
        for table, count in counts.items():
            PERSONAL_DATA_PURGED.labels(table).inc(count)
        if any(counts.values()):
            log.info("personal data purged", service=self._personal.service, **counts)
