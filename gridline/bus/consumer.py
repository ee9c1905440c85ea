"""The consumer runner: take a batch, dedup it, apply it in one transaction, commit after.

Per poll, over every partition it brought: decode every record (what cannot be decoded is
dead-lettered at once), skip what the consumer does not act on, look the rest up in the ledger
with one query, then apply the new ones in one transaction together with their ledger marks and
whatever they stage in the outbox, commit, and commit the offsets. When anything in the batch
fails, the transaction is rolled back and the batch is applied again, partition by partition and
record by record, each with bounded retries, so that only the poison record is dead-lettered.
Dead letters go through the outbox in the same transaction as the record's ledger mark, so a
dead letter is neither lost nor doubled. A poll that brings few records may wait a short linger
for more (`consumer_linger_ms`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from gridline.bus.envelope import Envelope, PermanentError, UndecodableRecord, decode
from gridline.bus.ledger import mark_all_processed, processed_among
from gridline.bus.outbox import stage_raw
from gridline.bus.producer import BrokerUnavailable
from gridline.bus.security import kafka_security
from gridline.bus.topics import dead_letter
from gridline.db import BeforeCommit, Database, before_commit
from gridline.logging import get_logger
from gridline.metrics import (
    CONSUMER_BATCHES,
    CONSUMER_HANDLE_SECONDS,
    CONSUMER_LAG,
    CONSUMER_RECORDS,
)
from gridline.privacy import redact_error
from gridline.settings import Settings
from gridline.tracing import consumer_span, consumer_spans

# A handler applies one event inside the runner's transaction. What it produces it stages in
# the outbox (`gridline.bus.outbox.stage`), with event ids derived from the input so that a
# replay produces the same ids; effects outside the database wait for `db.after_commit`.
Handler = Callable[[Envelope, AsyncSession], Awaitable[None]]
# A batch handler settles a batch of events itself (its own transactions, calls to the outside
# world) and returns once every one of them is settled; it must apply each event once even if
# it is given again (notify's per-recipient delivery rows). The runner marks them afterwards,
# and runs the hook it may return in that same transaction: what is left to write then costs
# no transaction of its own (on SQLite, no second turn at the one write lock).
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[BeforeCommit | None]]
# Whether the consumer acts on an event at all; the rest are skipped without a ledger lookup.
Accepts = Callable[[Envelope], bool]
# Reads at once, in the runner's transaction and before the handler sees them, what a batch's
# events would otherwise make the handler query one by one.
Prepare = Callable[[Sequence[Envelope], AsyncSession], Awaitable[None]]

# Errors that retrying cannot fix: the record is dead-lettered at its first failure.
_PERMANENT = (PermanentError, TypeError, UndecodableRecord)
# Errors of a dependency being down, not of the record: never dead-lettered; the runner pauses
# and takes the records up again (a database outage must not empty a topic into its DLQ).
_OUTAGE = (BrokerUnavailable, OperationalError, InterfaceError, ConnectionError, TimeoutError)
_OUTAGE_PAUSE_SECONDS = 1.0
# How long the broker may hold a fetch that finds nothing new: caught up, a long poll (few
# fetches while idle); behind by a batch or more, an answer at once (see `_pace_fetches`).
_CAUGHT_UP_FETCH_WAIT_MS = 500
_BACKLOG_FETCH_WAIT_MS = 20

log = get_logger(__name__)


@dataclass(frozen=True)
class _Item:
    record: ConsumerRecord
    envelope: Envelope


@dataclass(frozen=True)
class _Part:
    """One partition's share of a poll: what to apply and what cannot be decoded."""

    items: list[_Item]
    undecodable: list[tuple[ConsumerRecord, UndecodableRecord]]


class _Outage(Exception):
    """A dependency went down while records were applied one by one, at `offset`."""

    def __init__(self, offset: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.offset = offset
        self.error = error


class _BatchFailed(Exception):
    """A handler failed on one event of a batch: that was the event's first try."""

    def __init__(self, event_id: str, error: Exception) -> None:
        super().__init__(f"{event_id}: {error}")
        self.event_id = event_id
        self.error = error


class ConsumerRunner:
    """Runs one consumer group member on one topic until `stop()`.

    Give exactly one of `handler` (applied in the runner's transaction) and `batch_handler`;
    `prepare` goes with `handler`.
    The database must have an outbox (`gridline.bus.outbox.Outbox`), which carries dead letters.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        topic: str,
        group: str,
        db: Database,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        accepts: Accepts | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        self.topic = topic
        self.group = group
        self._settings = settings
        self._handler = handler
        self._batch_handler = batch_handler
        self._accepts = accepts
        self._prepare = prepare
        self._db = db
        self._batch_records = settings.consumer_batch_records
        self._linger = settings.consumer_linger_ms / 1000
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.consumer_session_timeout_ms,
            # A member hears of a rebalance (a replica KEDA added at a surge) at its next
            # heartbeat: within a second, not a third of the session.
            heartbeat_interval_ms=min(1_000, settings.consumer_session_timeout_ms // 3),
            rebalance_timeout_ms=settings.consumer_rebalance_timeout_ms,
            max_poll_records=settings.consumer_batch_records,
            max_partition_fetch_bytes=settings.consumer_fetch_partition_bytes,
            fetch_max_wait_ms=_CAUGHT_UP_FETCH_WAIT_MS,
            **kafka_security(settings),
        )
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Partitions this member reports lag for, to drop them when they move to another member.
        self._lag_partitions: set[int] = set()

    async def __aenter__(self) -> ConsumerRunner:
        """Run in the background until the context exits."""
        self._task = asyncio.create_task(self.run(), name=f"consumer {self.group}")
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def alive(self) -> bool:
        """Readiness: joined the broker and still running."""
        return self.started.is_set() and self._task is not None and not self._task.done()

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until stopped. Offsets are committed only after each batch's effect."""
        if not await self._join():
            return
        self.started.set()
        try:
            while not self._stopping.is_set():
                batch = await self._poll()
                if batch:
                    await self._process(batch)
                await self._record_lag()
        finally:
            self._forget_lag(self._lag_partitions)
            await self._consumer.stop()

    async def _poll(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """The next records; a short poll waits up to the linger for more to join it.

        A record's fixed costs (transaction, ledger query, offset commit, outbox relay) are paid
        once per batch, so records arriving a few at a time cost several times what a backlog
        does; the linger trades that for a bounded wait. A poll behind its partitions' end (a
        backlog: the next poll is there at once) does not linger.
        """
        batch: dict[TopicPartition, list[ConsumerRecord]] = await self._consumer.getmany(
            timeout_ms=200, max_records=self._batch_records
        )
        taken = sum(len(records) for records in batch.values())
        if not taken or taken >= self._batch_records or not self._linger or self._behind(batch):
            return batch
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._linger)
        more = await self._consumer.getmany(timeout_ms=0, max_records=self._batch_records - taken)
        for tp, records in more.items():
            batch.setdefault(tp, []).extend(records)
        return batch

    def _behind(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Whether the broker held more of a partition than this poll brought of it."""
        for tp, records in batch.items():
            highwater = self._consumer.highwater(tp)
            if records and highwater is not None and highwater > records[-1].offset + 1:
                return True
        return False

    async def _join(self) -> bool:
        """Start the consumer unless stopped first; whether it started."""
        starting = asyncio.ensure_future(self._consumer.start())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if starting.done() and starting.exception() is None:
            return True
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        await self._consumer.stop()
        if not self._stopping.is_set():
            starting.result()  # a failure to start is the caller's to see
        return False

    async def _record_lag(self) -> None:
        """Set the lag gauge of each partition held; drop the ones no longer held. Pace the
        fetches by the lag."""
        held: set[int] = set()
        lag = 0
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                # Not fetched yet: the position may not be known without a broker round trip.
                continue
            try:
                position = await self._consumer.position(tp)
            except IllegalStateError:
                continue  # revoked by a rebalance since `assignment()`
            behind = max(0, highwater - position)
            CONSUMER_LAG.labels(self.topic, self.group, str(tp.partition)).set(behind)
            held.add(tp.partition)
            lag += behind
        self._forget_lag(self._lag_partitions - held)
        self._lag_partitions = held
        self._pace_fetches(backlog=lag >= self._batch_records)

    def _pace_fetches(self, *, backlog: bool) -> None:
        """Let the broker hold a fetch for new records only while this member is caught up.

        aiokafka keeps one fetch in flight per broker and leaves out of it the partitions with
        records still buffered. In a backlog whose partitions end at different offsets, the
        fetch of one that has run out would be held for the whole wait while the others'
        buffers run dry and the member waits with records left to take. aiokafka has no public
        setter for the wait; its fetcher reads this attribute for each request it builds.
        """
        fetcher = getattr(self._consumer, "_fetcher", None)
        if fetcher is not None and hasattr(fetcher, "_fetch_max_wait_ms"):
            wait = _BACKLOG_FETCH_WAIT_MS if backlog else _CAUGHT_UP_FETCH_WAIT_MS
            fetcher._fetch_max_wait_ms = wait

    def _forget_lag(self, partitions: set[int]) -> None:
        for partition in partitions:
            CONSUMER_LAG.remove(self.topic, self.group, str(partition))

    async def _process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Apply one poll's records, of every partition, in one transaction; commit after.

        When the transaction fails the records are applied again partition by partition,
        record by record; a dependency outage seeks back and pauses instead.
        """
        started = time.perf_counter()
        parts = {tp: self._decode(records) for tp, records in batch.items()}
        items = [item for part in parts.values() for item in part.items]
        undecodable = [pair for part in parts.values() for pair in part.undecodable]
        done = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        if items or undecodable:
            try:
                await self._apply_batch(items, undecodable)
                CONSUMER_BATCHES.labels(self.topic, self.group, "batch").inc()
            except Exception as exc:
                cause = exc.error if isinstance(exc, _BatchFailed) else exc
                if isinstance(cause, _OUTAGE):
                    await self._pause(
                        {tp: records[0].offset for tp, records in batch.items()}, cause
                    )
                    return
                log.warning(
                    "batch failed; applying it record by record",
                    topic=self.topic,
                    records=len(items),
                    error=str(exc),
                )
                CONSUMER_BATCHES.labels(self.topic, self.group, "fallback").inc()
                failed = exc if isinstance(exc, _BatchFailed) else None
                finished: dict[TopicPartition, int] = {}
                for tp, part in parts.items():
                    try:
                        await self._apply_one_by_one(part.items, part.undecodable, failed)
                    except _Outage as outage:
                        # What is applied stays committed; this partition and the ones not
                        # reached yet are taken up again after the pause.
                        finished[tp] = outage.offset
                        await self._commit(finished)
                        await self._pause(
                            {tp: outage.offset}
                            | {
                                later: batch[later][0].offset
                                for later in parts
                                if later not in finished
                            },
                            outage.error,
                        )
                        return
                    finished[tp] = done[tp]
            CONSUMER_HANDLE_SECONDS.labels(self.topic, self.group).observe(
                (time.perf_counter() - started) / max(1, len(items))
            )
        await self._commit(done)

    def _decode(self, records: list[ConsumerRecord]) -> _Part:
        """One partition's records decoded; the ones this consumer does not act on skipped."""
        part = _Part([], [])
        skipped = 0
        for record in records:
            try:
                envelope = decode(record.key, record.value, list(record.headers))
            except UndecodableRecord as exc:
                part.undecodable.append((record, exc))
                continue
            if self._accepts is not None and not self._accepts(envelope):
                skipped += 1
                continue
            part.items.append(_Item(record, envelope))
        if skipped:
            CONSUMER_RECORDS.labels(self.topic, self.group, "skipped").inc(skipped)
        return part

    async def _pause(self, resume_at: dict[TopicPartition, int], error: BaseException) -> None:
        """A dependency is down: take the partitions up again from these offsets after a pause."""
        log.warning(
            "dependency unavailable; pausing", topic=self.topic, error=f"{type(error).__name__}"
        )
        for tp, offset in resume_at.items():
            self._consumer.seek(tp, offset)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), _OUTAGE_PAUSE_SECONDS)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}
            )
        except (CommitFailedError, KafkaError) as exc:
            # A partition moved to another member; it replays from the last commit and dedups.
            log.warning("commit failed", topic=self.topic, error=str(exc))

    async def _apply_batch(
        self, items: list[_Item], undecodable: list[tuple[ConsumerRecord, UndecodableRecord]]
    ) -> None:
        """Apply the batch's new events and dead-letter the undecodable, in one transaction."""
        fresh: list[_Item] = []
        finish: BeforeCommit | None = None
        if self._batch_handler is not None:
            async with self._db.session() as session:
                fresh = await self._fresh(session, items)
            if fresh:
                finish = await self._handle_batch(fresh)
        async with self._db.session() as session:
            if finish is not None:
                await finish(session)
            if self._handler is not None:
                fresh = await self._fresh(session, items)
                if fresh and self._prepare is not None:
                    await self._prepare([item.envelope for item in fresh], session)
                for item in fresh:
                    with consumer_span(item.record, self.group):
                        try:
                            await self._handler(item.envelope, session)
                        except Exception as exc:
                            raise _BatchFailed(item.envelope.event_id, exc) from exc
            for record, error in undecodable:
                self._stage_dead_letter(session, record, error, attempts=0)
            applied = [i.envelope.event_id for i in fresh]
            # Written after the handlers' own batched writes: on SQLite the first write takes
            # the database's one write lock until the commit, and replicas wait for it.
            before_commit(
                session, "gridline.ledger", lambda s: mark_all_processed(s, self.group, applied)
            )
        self._count("processed", len(fresh))
        self._count("duplicate", len(items) - len(fresh))

    async def _handle_batch(self, items: list[_Item]) -> BeforeCommit | None:
        """Give the batch handler its events, each carrying the context of its CONSUMER span;
        what it leaves to write with the ledger marks."""
        assert self._batch_handler is not None
        with consumer_spans([item.record for item in items], self.group) as contexts:
            return await self._batch_handler(
                [
                    replace(item.envelope, trace_context=context)
                    for item, context in zip(items, contexts, strict=True)
                ]
            )

    async def _fresh(self, session: AsyncSession, items: list[_Item]) -> list[_Item]:
        """The items whose events the ledger does not hold, each event id once."""
        seen = await processed_among(session, self.group, {i.envelope.event_id for i in items})
        fresh = []
        for item in items:
            if item.envelope.event_id not in seen:
                seen.add(item.envelope.event_id)
                fresh.append(item)
        return fresh

    async def _apply_one_by_one(
        self,
        items: list[_Item],
        undecodable: list[tuple[ConsumerRecord, UndecodableRecord]],
        failed: _BatchFailed | None,
    ) -> None:
        """Apply a failed batch record by record; raises _Outage where a dependency went down."""
        first = min(r.offset for r in [*(i.record for i in items), *(r for r, _ in undecodable)])
        try:
            for record, error in undecodable:
                async with self._db.session() as session:
                    self._stage_dead_letter(session, record, error, attempts=0)
        except _OUTAGE as exc:
            raise _Outage(first, exc) from exc
        for item in items:
            first_error = None
            if failed is not None and item.envelope.event_id == failed.event_id:
                first_error, failed = failed.error, None
            try:
                await self._apply_one(item, first_error)
            except _OUTAGE as exc:
                raise _Outage(item.record.offset, exc) from exc

    async def _apply_one(self, item: _Item, first_error: Exception | None = None) -> None:
        """Apply one record with bounded retries; dead-letter it when they run out.

        `first_error` is the failure of a try already made in the batch: it counts as the first.
        """
        attempts = 0 if first_error is None else 1
        if first_error is not None and (
            isinstance(first_error, _PERMANENT) or self._settings.consumer_max_attempts == 1
        ):
            await self._give_up(item, first_error, attempts)
            return
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._settings.consumer_max_attempts - attempts),
                wait=wait_exponential(multiplier=self._settings.consumer_retry_backoff_seconds),
                retry=retry_if_not_exception_type(_PERMANENT),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self._count("retried", 1)
                    with consumer_span(item.record, self.group):
                        outcome = await self._apply_single(item)
        except _OUTAGE:
            raise
        except Exception as exc:
            await self._give_up(item, exc, attempts)
            return
        self._count(outcome, 1)

    async def _give_up(self, item: _Item, error: Exception, attempts: int) -> None:
        """Dead-letter a record and mark it, so that it is not applied again unless replayed."""
        log.error(
            "record failed",
            topic=self.topic,
            event_id=item.envelope.event_id,
            error=f"{type(error).__name__}: {error}"[:500],
            exc_info=error,
        )
        async with self._db.session() as session:
            if not await self._fresh(session, [item]):
                return
            self._stage_dead_letter(session, item.record, error, attempts=attempts)
            await mark_all_processed(session, self.group, [item.envelope.event_id])

    async def _apply_single(self, item: _Item) -> str:
        if self._batch_handler is not None:
            async with self._db.session() as session:
                if not await self._fresh(session, [item]):
                    return "duplicate"
            finish = await self._handle_batch([item])
            async with self._db.session() as session:
                if finish is not None:
                    await finish(session)
                await mark_all_processed(session, self.group, [item.envelope.event_id])
            return "processed"
        assert self._handler is not None
        async with self._db.session() as session:
            if not await self._fresh(session, [item]):
                return "duplicate"
            await self._handler(item.envelope, session)
            await mark_all_processed(session, self.group, [item.envelope.event_id])
        return "processed"

    def _stage_dead_letter(
        self, session: AsyncSession, record: ConsumerRecord, error: Exception, attempts: int
    ) -> None:
        headers = [
            *[(k, v) for k, v in record.headers if not k.startswith("dlq-")],
            ("dlq-error", redact_error(f"{type(error).__name__}: {error}")[:2000].encode()),
            ("dlq-attempts", str(attempts).encode()),
            ("dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ("dlq-group", self.group.encode()),
        ]
        stage_raw(
            session,
            dead_letter(self.topic),
            event_id=f"dlq:{self.group}:{record.topic}/{record.partition}/{record.offset}",
            key=record.key,
            value=record.value or b"",
            headers=headers,
        )
        self._count("dead_lettered", 1)
        log.error("dead-lettered", topic=self.topic, error=str(error), attempts=attempts)

    def _count(self, outcome: str, count: int) -> None:
        if count:
            CONSUMER_RECORDS.labels(self.topic, self.group, outcome).inc(count)
