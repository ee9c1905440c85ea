"""The consumer runner: decode, dedup, apply with bounded retries, dead-letter, commit after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import (
    AsyncRetrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from gridline.bus.envelope import Envelope, UndecodableRecord, decode
from gridline.bus.ledger import already_processed, mark_processed
from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.bus.topics import dead_letter
from gridline.db import Database
from gridline.logging import get_logger
from gridline.metrics import CONSUMER_HANDLE_SECONDS, CONSUMER_LAG, CONSUMER_RECORDS
from gridline.settings import Settings
from gridline.tracing import consumer_span

# A handler applies one event inside the runner's transaction; what it produces it sends itself,
# with event ids derived from the input so that a replay produces the same ids.
Handler = Callable[[Envelope, AsyncSession], Awaitable[None]]

log = get_logger(__name__)

_BROKER_BACKOFF_SECONDS = 1.0


class ConsumerRunner:
    """Runs one consumer group member on one topic until `stop()`."""

    def __init__(
        self,
        *,
        settings: Settings,
        topic: str,
        group: str,
        handler: Handler,
        db: Database,
        producer: EventProducer,
    ) -> None:
        self.topic = topic
        self.group = group
        self._settings = settings
        self._handler = handler
        self._db = db
        self._producer = producer
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_session_timeout_ms // 3,
            rebalance_timeout_ms=settings.consumer_rebalance_timeout_ms,
            max_poll_records=200,
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
        """Ask the loop to finish the record in hand, commit and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until stopped. Offsets are committed only after each record's effect."""
        await self._consumer.start()
        self.started.set()
        try:
            while not self._stopping.is_set():
                batch = await self._consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    await self._process_partition(tp, records)
                    if self._stopping.is_set():
                        break
                await self._record_lag()
        finally:
            self._forget_lag(self._lag_partitions)
            await self._consumer.stop()

    async def _record_lag(self) -> None:
        """Set the lag gauge of each partition held; drop the ones no longer held."""
        held: set[int] = set()
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                # Not fetched yet: the position may not be known without a broker round trip.
                continue
            try:
                position = await self._consumer.position(tp)
            except IllegalStateError:
                continue  # revoked by a rebalance since `assignment()`
            CONSUMER_LAG.labels(self.topic, self.group, str(tp.partition)).set(
                max(0, highwater - position)
            )
            held.add(tp.partition)
        self._forget_lag(self._lag_partitions - held)
        self._lag_partitions = held

    def _forget_lag(self, partitions: set[int]) -> None:
        for partition in partitions:
            CONSUMER_LAG.remove(self.topic, self.group, str(partition))

    async def _process_partition(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        done: int | None = None
        for record in records:
            try:
                with consumer_span(record, self.group):
                    await self._process(record)
            except BrokerUnavailable as exc:
                # Nothing downstream can be confirmed: replay from this record once it is back.
                log.warning("broker unavailable, pausing", topic=self.topic, error=str(exc))
                self._consumer.seek(tp, record.offset)
                await asyncio.sleep(_BROKER_BACKOFF_SECONDS)
                break
            done = record.offset
            if self._stopping.is_set():
                break
        if done is not None:
            await self._commit(tp, done + 1)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        try:
            await self._consumer.commit({tp: OffsetAndMetadata(offset, "")})
        except (CommitFailedError, KafkaError) as exc:
            # The partition moved to another member; it replays from the last commit and dedups.
            log.warning("commit failed", topic=self.topic, partition=tp.partition, error=str(exc))

    async def _process(self, record: ConsumerRecord) -> None:
        started = time.perf_counter()
        try:
            envelope = decode(record.key, record.value, list(record.headers))
        except UndecodableRecord as exc:
            await self._dead_letter(record, exc, attempts=0)
            return
        outcome = "processed"
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._settings.consumer_max_attempts),
                wait=wait_exponential(multiplier=self._settings.consumer_retry_backoff_seconds),
                retry=retry_if_not_exception_type(BrokerUnavailable),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        CONSUMER_RECORDS.labels(self.topic, self.group, "retried").inc()
                    outcome = await self._apply(envelope)
        except BrokerUnavailable:
            raise
        except Exception as exc:
            log.exception("record failed", topic=self.topic, event_id=envelope.event_id)
            await self._dead_letter(record, exc, attempts=attempts)
            async with self._db.session() as session:
                if not await already_processed(session, self.group, envelope.event_id):
                    mark_processed(session, self.group, envelope.event_id)
            return
        CONSUMER_RECORDS.labels(self.topic, self.group, outcome).inc()
        CONSUMER_HANDLE_SECONDS.labels(self.topic, self.group).observe(
            time.perf_counter() - started
        )

    async def _apply(self, envelope: Envelope) -> str:
        async with self._db.session() as session:
            if await already_processed(session, self.group, envelope.event_id):
                return "duplicate"
            await self._handler(envelope, session)
            mark_processed(session, self.group, envelope.event_id)
        return "processed"

    async def _dead_letter(self, record: ConsumerRecord, error: Exception, attempts: int) -> None:
        headers = [
            *[(k, v) for k, v in record.headers if not k.startswith("dlq-")],
            ("dlq-error", f"{type(error).__name__}: {error}"[:2000].encode()),
            ("dlq-attempts", str(attempts).encode()),
            ("dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
            ("dlq-group", self.group.encode()),
        ]
        await self._producer.publish_raw(dead_letter(self.topic), record.key, record.value, headers)
        CONSUMER_RECORDS.labels(self.topic, self.group, "dead_lettered").inc()
        log.error("dead-lettered", topic=self.topic, error=str(error), attempts=attempts)
