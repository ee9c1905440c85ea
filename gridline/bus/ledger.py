"""The processed-events ledger: consumers skip event ids already applied.

A consumer that gives up on a record dead-letters it and marks its event id as processed, so that
a redelivered copy is not dead-lettered twice. Replaying it (`gridline dlq replay`) therefore
releases that mark first (`release_for_replay`), then publishes the record again.

Where a replay is remembered. Publishing and the ledger cannot share one transaction, and a
memory kept on the broker (a marker topic, or a consumer group's committed offset) can only be
written before or after the ledger release: a crash between the two either replays a record
whose mark was never released (the consumer skips it: lost) or releases, on the next run, a mark
that by then records a real application (applied twice). So the memory lives in the ledger
itself: in the transaction that deletes the dead-letter mark `(group, event id)` it inserts a
release row `(dlq-replay:<group>:<source>, event id)` in the same table. Every run then decides
from the ledger alone, per dead letter:

- no release row: release the mark and write the release row (one commit), then publish;
- release row, event applied: skip, the replay took effect;
- release row, event not applied: publish again (the crash fell between commit and publish, or
  the copy is still on its way; the consumer's dedup keeps it to one application).

A crash at any point thus leaves at most a record to publish again, never a released mark
without its release row. The release row is keyed by the record's source position, so a
duplicate dead letter of the same delivery is not released twice, while a record that fails
again after its replay (new source position) gets a release of its own.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlalchemy import Table, delete, insert
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.db import Database, table_of, utc_timestamp
from gridline.settings import Settings
from gridline.timestamps import now


class ProcessedEvent(SQLModel, table=True):
    """An event a consumer group applied, written in the same transaction as its effect."""

    __tablename__ = "processed_event"

    # Keyed by event id first: a batch's lookup probes its ids whatever the planner knows.
    event_id: str = Field(primary_key=True, max_length=100)
    consumer: str = Field(primary_key=True, max_length=100)
    processed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_type=utc_timestamp(),
        index=True,
    )


PROCESSED_EVENT_TABLE: Table = table_of(ProcessedEvent)
_LEDGER = PROCESSED_EVENT_TABLE


async def already_processed(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Whether this consumer group has applied the event."""
    return bool(await processed_among(session, consumer, [event_id]))


async def processed_among(
    session: AsyncSession, consumer: str, event_ids: Collection[str]
) -> set[str]:
    """Which of the event ids this consumer group has applied, in one query."""
    if not event_ids:
        return set()
    found = await session.exec(
        select(_LEDGER.c.event_id).where(
            _LEDGER.c.consumer == consumer, _LEDGER.c.event_id.in_(list(event_ids))
        )
    )
    return set(found.all())


def mark_processed(session: AsyncSession, consumer: str, event_id: str) -> None:
    """Record the event as applied (commits with the caller's transaction)."""
    session.add(ProcessedEvent(consumer=consumer, event_id=event_id))


async def mark_all_processed(
    session: AsyncSession, consumer: str, event_ids: Collection[str]
) -> None:
    """Record events as applied in one statement (commits with the caller's transaction)."""
    if not event_ids:
        return
    moment = now()
    await session.exec(
        insert(_LEDGER),
        params=[{"consumer": consumer, "event_id": e, "processed_at": moment} for e in event_ids],
    )


async def purge(session: AsyncSession, retention_seconds: int) -> int:
    """Forget events applied longer ago than the retention; returns how many rows went."""
    return await purge_before(session, now() - timedelta(seconds=retention_seconds))


async def purge_before(session: AsyncSession, cutoff: datetime) -> int:
    """Forget events applied before `cutoff`; returns how many rows went."""
    result = await session.exec(delete(_LEDGER).where(_LEDGER.c.processed_at < cutoff))
    return int(result.rowcount or 0)


class Release(Enum):
    """What releasing a dead letter's mark found, and so what its replay does next."""

    RELEASED = "released"  # released now: publish the record
    PENDING = "pending"  # released by an earlier replay, not applied since: publish again
    APPLIED = "applied"  # released by an earlier replay and applied since: nothing to do


def release_key(group: str, source: str) -> str:
    """The ledger `consumer` of the row that remembers a replay of a delivery to a group."""
    return f"dlq-replay:{group}:{source}"


async def release_for_replay(
    session: AsyncSession, group: str, event_id: str, source: str, *, dry_run: bool = False
) -> Release:
    """Release a dead letter's mark and remember the release, in the caller's transaction.

    `source` is where the dead-lettered record came from (topic/partition/offset). A dry run
    decides the same way and changes nothing.
    """
    marker = release_key(group, source)
    applied = await already_processed(session, group, event_id)
    if await already_processed(session, marker, event_id):
        return Release.APPLIED if applied else Release.PENDING
    if not dry_run:
        await session.exec(
            delete(_LEDGER).where(_LEDGER.c.consumer == group, _LEDGER.c.event_id == event_id)
        )
        mark_processed(session, marker, event_id)
    return Release.RELEASED


@dataclass(frozen=True)
class ServiceLedger:
    """A service's ledger as a tool outside the service reaches it: which consumer groups write
    it, its database, and the release of a dead letter's mark in it.

    Each service that consumes exports one (`services/<name>/ledger.py`), so that nothing but the
    service decides where its ledger lives and which groups are its own.
    """

    service: str
    groups: frozenset[str]

    def database(self, settings: Settings) -> Database:
        """The service's database with only the ledger table; neither created nor migrated,
        which stays the service's own business at its start."""
        return Database(settings, self.service, [PROCESSED_EVENT_TABLE])

    async def release_for_replay(
        self, db: Database, group: str, event_id: str, source: str, *, dry_run: bool = False
    ) -> Release:
        """`release_for_replay` in one transaction of this service's database."""
        if group not in self.groups:
            raise ValueError(f"consumer group {group!r} is not one of {self.service}'s")
        async with db.session() as session:
            return await release_for_replay(session, group, event_id, source, dry_run=dry_run)
