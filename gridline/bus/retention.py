"""Forgetting what is old: ledger marks and published outbox rows past their retention."""

from __future__ import annotations

from gridline.bus import ledger
from gridline.bus.outbox import Outbox
from gridline.db import Database
from gridline.metrics import RETENTION_PURGED
from gridline.settings import Settings
from gridline.workers import PeriodicWorker


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
