"""The transactional outbox: an event is written with the effect that produced it, then published.

A consumer's handler or an HTTP action stages what it produces with `stage(session, topic,
envelope)`. The rows are written in the same transaction as the effect (and the consumer's
ledger mark), so an effect is never kept without its events nor its events without it. Once the
transaction has committed, the relay publishes them, all that are waiting with one wait for the
broker. The next transaction that writes outbox rows marks the confirmed ones published with its
own (or the relay does, when none comes within `_MARK_WITHIN_SECONDS`), so that a batch costs
one write transaction rather than two. Rows a crash or a broker outage left unpublished, or
published and not yet marked, are found by the sweep and published (again) then. Consumers
dedup on the event id, so a row published twice is applied once, and no handler ever waits for
the broker inside a transaction.

On a broker that keeps nothing across restarts (the embedded tansu), a service that meets a new
broker (a new `broker_epoch`) re-publishes everything it produced within the replay window, and
the services that consume it drop what their ledgers already hold.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, delete, insert, or_, select, update
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer, RawRecord
from gridline.db import STAGED, Database, after_commit, after_rollback, table_of, utc_timestamp
from gridline.logging import get_logger
from gridline.metrics import OUTBOX_PENDING, OUTBOX_PUBLISHED
from gridline.settings import Settings
from gridline.timestamps import now
from gridline.tracing import producer_span
from gridline.workers import PeriodicWorker

log = get_logger(__name__)

# Rows published per wait for the broker.
_CHUNK = 2_000
# An unpublished row this old was left by a crash or an outage: the sweep publishes it.
_SWEEP_AGE = timedelta(seconds=10)
_RETRY_SECONDS = 1.0
# Confirmed rows wait this long at most for a transaction of the service's to mark them.
_MARK_WITHIN_SECONDS = 0.5
# A published mark names at most this many ranges of ids, each of at least this many ids (a
# range takes two parameters); the rest it lists.
_MOST_RANGES = 16
_SHORTEST_RANGE = 3


class OutboxRecord(SQLModel, table=True):
    """An event produced in a committed transaction, published or waiting to be."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=200)
    event_id: str = Field(max_length=200)
    key: bytes | None = None
    value: bytes
    # The Kafka headers as a JSON object of strings (schema, event id, trace context, ...).
    headers: str
    created_at: datetime = Field(sa_type=utc_timestamp(), index=True)
    published_at: datetime | None = Field(
        default=None,
        sa_type=utc_timestamp(),
        index=True,
    )


class ReplayedEpoch(SQLModel, table=True):
    """A broker epoch this service has re-published its outbox to."""

    __tablename__ = "outbox_replayed_epoch"

    epoch: str = Field(primary_key=True, max_length=100)
    replayed_at: datetime = Field(sa_type=utc_timestamp())


OUTBOX: Table = table_of(OutboxRecord)
REPLAYED_EPOCH: Table = table_of(ReplayedEpoch)
# Every service that produces adds these to its own tables.
OUTBOX_TABLES: list[Table] = [OUTBOX, REPLAYED_EPOCH]


async def purge_published_before(session: AsyncSession, cutoff: datetime) -> int:
    """Delete the published rows created before `cutoff`; returns how many."""
    result = await session.exec(
        delete(OUTBOX).where(OUTBOX.c.published_at.is_not(None), OUTBOX.c.created_at < cutoff)
    )
    return int(result.rowcount or 0)


async def mark_published(session: AsyncSession, ids: Sequence[int]) -> None:
    """Mark these outbox rows published, now; rows another transaction is marking are left to
    it (on PostgreSQL the mark waits for no lock, so it cannot hold up or deadlock the write
    it rides with)."""
    if ids:
        unmarked = (
            select(OUTBOX.c.id)
            .where(_among(ids), OUTBOX.c.published_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        await session.exec(
            update(OUTBOX).where(OUTBOX.c.id.in_(unmarked)).values(published_at=now())
        )


def _among(ids: Sequence[int]) -> ColumnElement[bool]:
    """`id` is one of `ids`, written as ranges of consecutive ids and a list of the rest.

    One transaction's rows are inserted by one statement and usually take consecutive ids, so
    what the relay confirmed is a few ranges: a few parameters instead of one a row (1,450 in a
    batch of assignment's), which the database was parsing and matching one by one. The longest
    runs become ranges, at most `_MOST_RANGES` of them; the ids of shorter runs (what replicas
    inserting at once interleaved) are listed.
    """
    runs: list[list[int]] = []
    for row_id in sorted(set(ids)):
        if runs and row_id == runs[-1][-1] + 1:
            runs[-1].append(row_id)
        else:
            runs.append([row_id])
    runs.sort(key=len, reverse=True)
    ranged = [run for run in runs[:_MOST_RANGES] if len(run) >= _SHORTEST_RANGE]
    listed = [row_id for run in runs[len(ranged) :] for row_id in run]
    return or_(
        *(OUTBOX.c.id.between(run[0], run[-1]) for run in ranged),
        *([OUTBOX.c.id.in_(listed)] if listed else []),
    )


def stage(session: AsyncSession, topic: str, envelope: Envelope) -> None:
    """Publish `envelope` on `topic` once the session's transaction commits (and only then)."""
    with producer_span(topic, envelope.event_id, envelope.trace_context):
        headers = envelope.kafka_headers()
    stage_raw(
        session,
        topic,
        event_id=envelope.event_id,
        key=envelope.key.encode(),
        value=envelope.message.SerializeToString(),
        headers=headers,
    )


def stage_raw(
    session: AsyncSession,
    topic: str,
    *,
    event_id: str,
    key: bytes | None,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    """Stage a record as bytes (a dead letter keeps the source record's own bytes)."""
    session.info.setdefault(STAGED, []).append(
        {
            "topic": topic,
            "event_id": event_id[:200],
            "key": key,
            "value": value,
            "headers": json.dumps({k: v.decode(errors="replace") for k, v in headers}),
            "created_at": now(),
        }
    )


@dataclass(frozen=True)
class _Row:
    id: int
    topic: str
    key: bytes | None
    value: bytes
    headers: str

    def record(self) -> RawRecord:
        return (
            self.topic,
            self.key,
            self.value,
            [(k, v.encode()) for k, v in json.loads(self.headers).items()],
        )


class Outbox:
    """Writes staged events with their transaction and relays them to the broker after it.

    Use as an async context manager around the service's work: on entry it replays for a new
    broker epoch (in the background) and starts the relay and the sweep; on exit it publishes
    what is still waiting, within the shutdown bound, and leaves the rest to the next start.
    """

    def __init__(self, db: Database, producer: EventProducer, settings: Settings) -> None:
        self._db = db
        self.producer = producer
        self._replay_seconds = settings.outbox_replay_seconds
        self._epoch = settings.broker_epoch
        self._drain_seconds = settings.shutdown_drain_seconds
        self._pending: dict[int, _Row] = {}
        # Confirmed by the broker, not yet marked published (insertion-ordered), and taken by
        # a transaction that has not committed yet: the sweep leaves both alone.
        self._confirmed: dict[int, None] = {}
        self._marking: set[int] = set()
        self._mark_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._sweeper = _Sweeper(self)
        self.replayed = asyncio.Event()
        db.before_commit.append(self._write)

    @property
    def keeps_published(self) -> bool:
        """Whether published records are kept for a replay (the broker may forget them)."""
        return self._replay_seconds > 0

    async def __aenter__(self) -> Outbox:
        self._tasks = [asyncio.create_task(self._relay(), name="outbox relay")]
        if self.keeps_published and self._epoch:
            self._tasks.append(asyncio.create_task(self._replay(), name="outbox replay"))
        else:
            self.replayed.set()
        await self._sweeper.__aenter__()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._sweeper.__aexit__(None, None, None)
        try:
            await asyncio.wait_for(self.drained(), self._drain_seconds)
        except TimeoutError:
            log.warning(
                "outbox not drained; the next start publishes the rest", waiting=len(self._pending)
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._mark_confirmed()  # what a cancelled mark gave back, and any confirmed since

    async def drained(self) -> None:
        """Wait until every committed row this process knows of is published, and mark the
        ones still waiting for a transaction to mark them (after a mark under way)."""
        await self._idle.wait()
        await self._mark_confirmed()

    async def alive(self) -> bool:
        """Readiness: the relay is running."""
        return bool(self._tasks) and not self._tasks[0].done()

    async def remember_published(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        """Keep records already confirmed by the broker, for a replay after the broker forgets.

        Intake calls this before answering 202 when `keeps_published`: the report is then held
        on disk as well as by the broker.
        """
        if not envelopes:
            return
        moment = now()
        rows = [
            {
                "topic": topic,
                "event_id": e.event_id[:200],
                "key": e.key.encode(),
                "value": e.message.SerializeToString(),
                "headers": json.dumps({k: v.decode() for k, v in e.kafka_headers()}),
                "created_at": moment,
                "published_at": moment,
            }
            for e in envelopes
        ]
        async with self._db.session() as session:
            await session.exec(insert(OUTBOX), params=rows)

    async def _write(self, session: AsyncSession) -> None:
        staged = session.info.pop(STAGED, None)
        if not staged:
            return
        # Unsorted RETURNING: on SQLite the sorted form costs one statement per row. The ids
        # of one insert rise in the order the rows were staged, so sorting by id restores it.
        result = await session.exec(
            insert(OUTBOX).returning(
                OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.value, OUTBOX.c.headers
            ),
            params=staged,
        )
        rows = sorted((_Row(*found) for found in result.all()), key=lambda row: row.id)
        after_commit(session, lambda: self._enqueue(rows))
        await self._mark_in(session)

    def _enqueue(self, rows: Sequence[_Row]) -> None:
        for row in rows:
            self._pending.setdefault(row.id, row)
        if self._pending:
            self._idle.clear()
            self._wake.set()
            OUTBOX_PENDING.set(len(self._pending))

    async def _relay(self) -> None:
        while True:
            try:
                async with asyncio.timeout(_MARK_WITHIN_SECONDS if self._confirmed else None):
                    await self._wake.wait()
            except TimeoutError:
                await self._mark_confirmed()
                continue
            self._wake.clear()
            while self._pending:
                if not await self._publish(list(self._pending.values())[:_CHUNK]):
                    await asyncio.sleep(_RETRY_SECONDS)
            self._idle.set()

    async def _publish(self, rows: list[_Row]) -> bool:
        """Publish rows in order with one wait; the confirmed ones wait to be marked.

        Returns whether all were confirmed.
        """
        confirmed = await self.producer.send_many([row.record() for row in rows])
        done = [row.id for row, ok in zip(rows, confirmed, strict=True) if ok]
        if done:
            for row_id in done:
                self._pending.pop(row_id, None)
                self._confirmed[row_id] = None
            OUTBOX_PUBLISHED.inc(len(done))
        OUTBOX_PENDING.set(len(self._pending))
        if len(done) < len(rows):
            log.warning("outbox rows not confirmed; retrying", waiting=len(rows) - len(done))
            return False
        return True

    async def _mark_in(self, session: AsyncSession) -> None:
        """Mark the confirmed ids in this transaction: taken, not shared with another one, and
        given back if this one does not commit."""
        if not self._confirmed:
            return
        marked = list(self._confirmed)
        self._confirmed.clear()
        self._marking.update(marked)
        after_commit(session, lambda: self._marking.difference_update(marked))
        after_rollback(session, lambda: self._give_back(marked))
        await mark_published(session, marked)

    def _give_back(self, marked: list[int]) -> None:
        """Ids a mark that did not commit had taken: waiting again, and the relay told so that
        its half-second bound runs for them."""
        self._marking.difference_update(marked)
        self._confirmed.update(dict.fromkeys(marked))
        self._wake.set()

    async def _mark_confirmed(self) -> None:
        """Mark what the broker confirmed in a transaction of the relay's own."""
        async with self._mark_lock:
            if not self._confirmed:
                return
            try:
                async with self._db.session() as session:
                    await self._mark_in(session)
            except Exception:
                # Given back and tried again; if this process stops first, the sweep of the next
                # start publishes them again, and dedup absorbs it.
                log.exception("could not mark outbox rows published")

    async def sweep(self) -> int:
        """Queue rows a crash or an outage left unpublished; returns how many were found."""
        cutoff = now() - _SWEEP_AGE
        async with self._db.session() as session:
            rows = await _first_rows(
                session, OUTBOX.c.published_at.is_(None), OUTBOX.c.created_at < cutoff
            )
        known = self._pending.keys() | self._confirmed.keys() | self._marking
        self._enqueue([row for row in rows if row.id not in known])
        return len(rows)

    async def purge(self, retention_seconds: int) -> int:
        """Delete published rows older than the retention; returns how many."""
        async with self._db.session() as session:
            return await purge_published_before(
                session, now() - timedelta(seconds=retention_seconds)
            )

    async def _replay(self) -> None:
        """Re-publish what was produced within the window, once per new broker epoch."""
        async with self._db.session() as session:
            done = await session.get(ReplayedEpoch, self._epoch)
        if done is not None:
            self.replayed.set()
            return
        since = now() - timedelta(seconds=self._replay_seconds)
        last_id, total = 0, 0
        while True:
            async with self._db.session() as session:
                rows = await _first_rows(
                    session, OUTBOX.c.id > last_id, OUTBOX.c.created_at >= since
                )
            if not rows:
                break
            self._enqueue(rows)
            await self.drained()
            last_id, total = rows[-1].id, total + len(rows)
        async with self._db.session() as session:
            session.add(ReplayedEpoch(epoch=self._epoch, replayed_at=now()))
        log.info("outbox replayed to a new broker", epoch=self._epoch, records=total)
        self.replayed.set()


async def _first_rows(session: AsyncSession, *where: ColumnElement[bool]) -> list[_Row]:
    """The first chunk of outbox rows, in order, that match every condition."""
    # On the session's connection: SQLModel's `exec` types selects of at most four columns.
    result = await (await session.connection()).execute(
        select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.value, OUTBOX.c.headers)
        .where(*where)
        .order_by(OUTBOX.c.id)
        .limit(_CHUNK)
    )
    return [_Row(*found) for found in result.all()]


class _Sweeper(PeriodicWorker):
    """Publishes rows left unpublished by a crash or an outage."""

    name = "outbox sweep"

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(tick=5.0)
        self._outbox = outbox

    async def run_pass(self) -> None:
        """One sweep."""
        await self._outbox.sweep()
