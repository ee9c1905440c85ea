"""Every replica places by the same directory, duty and risk areas: each follows the database.

Design. The database is already where these live (the directory tables, `directory_person`'s
leave and backup, `risk_area_change`), and one row, `directory_version`, counts their changes:
every change raises its part's count in the transaction that makes it (an import, a duty change,
a risk-area change). Each replica reads that row every `every` seconds and reloads only the parts
whose count moved: the risk areas or everyone's duty state cheaply, the whole directory after an
import. The replica that served a change follows at once, before it answers.

Why a version and not a change event on a topic that every replica consumes with its own group:
the version commits with the change or not at all, needs no outbox, no group per replica and no
replay on a new broker, and works alike on SQLite and PostgreSQL. Its cost is one read of one row
per replica per `every`, never a query per report. Its bound is `every` plus a reload, for as long
as the replica reaches its database, which it needs anyway to commit a placement.

A reload does not stall placement: the new directory is built off the event loop and then takes
the place of the old one in one assignment (a duty change is applied person by person in place).
A report's handling takes `Current`'s directory and areas once, at its start, so a report is
placed on one directory even when an import lands meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from gridline.db import Database
from gridline.logging import get_logger
from services.assignment import metrics, storage
from services.assignment.directory import Directory
from services.assignment.risk import RiskAreas

log = get_logger(__name__)


@dataclass
class Current:
    """The directory and risk areas this replica places by now."""

    directory: Directory
    areas: RiskAreas = field(default_factory=RiskAreas)


class Follower:
    """Keeps a replica's `current` in step with the database's `directory_version`."""

    def __init__(self, db: Database, current: Current, seen: storage.Versions) -> None:
        self.current = current
        self._db = db
        self._seen = seen
        # A route following its own change and the timer must not reload the same part twice.
        self._lock = asyncio.Lock()

    @classmethod
    async def load(cls, db: Database) -> Follower:
        """A follower holding what the database holds now."""
        async with db.session() as session:
            seen = await storage.versions(session)
            directory = await storage.load_directory(session)
            areas = RiskAreas(await storage.risk_area_history(session))
        metrics.DIRECTORY_NODES.set(len(directory))
        return cls(db, Current(directory, areas), seen)

    async def refresh(self) -> None:
        """Reload whatever changed since the last look: nothing, duty, risk areas, everything.

        The counts are read before the data, so what is loaded is at least as new as the counts
        kept; a change committed in between is loaded again at the next look.
        """
        async with self._lock:
            directory = duty = areas = None
            async with self._db.session() as session:
                seen = await storage.versions(session)
                if seen.directory != self._seen.directory:
                    # A new directory carries its people's duty state.
                    directory = await storage.load_directory(session)
                elif seen.duty != self._seen.duty:
                    duty = await storage.load_duty(session)
                if seen.risk_areas != self._seen.risk_areas:
                    areas = RiskAreas(await storage.risk_area_history(session))
            if directory is not None:
                self.current.directory = directory
                metrics.DIRECTORY_NODES.set(len(directory))
                log.info("directory reloaded", nodes=len(directory), version=seen.directory)
            if duty is not None:
                _apply_duty(self.current.directory, duty)
            if areas is not None:
                self.current.areas = areas
            self._seen = seen

    async def follow(self, every: float) -> None:
        """Refresh every `every` seconds until cancelled; a failed look is logged and retried."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh()
            except Exception:
                # The database is away for a moment: placements wait for it too. Look again.
                log.warning("could not follow the directory's changes", exc_info=True)


def _apply_duty(directory: Directory, duty: dict[str, tuple[bool, str | None]]) -> None:
    for person_id, (on_leave, backup_id) in duty.items():
        person = directory.people.get(person_id)
        if person is not None and (person.on_leave, person.backup_id) != (on_leave, backup_id):
            directory.put_person(replace(person, on_leave=on_leave, backup_id=backup_id))


@asynccontextmanager
async def following(db: Database, every: float) -> AsyncIterator[Follower]:
    """Load what the database holds, then follow its changes every `every` seconds until the
    context closes."""
    follower = await Follower.load(db)
    task = asyncio.create_task(follower.follow(every), name="assignment.follow")
    try:
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
