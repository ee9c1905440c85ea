"""The consumer runner against the real embedded broker and a real SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlmodel import Field, SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.consumer import ConsumerRunner, Handler
from gridline.bus.envelope import Envelope
from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX_TABLES, Outbox
from gridline.bus.producer import EventProducer
from gridline.bus.topics import dead_letter, ensure_topics
from gridline.contracts.v1 import events_pb2
from gridline.db import Database
from gridline.settings import Settings
from tests.helpers import eventually


class Effect(SQLModel, table=True):
    """What the test handler did: one row per applied event."""

    __tablename__ = "test_effect"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str


@pytest.fixture
async def db(settings: Settings, producer: EventProducer) -> AsyncIterator[Database]:
    tables = [PROCESSED_EVENT_TABLE, *OUTBOX_TABLES, Effect.__table__]  # type: ignore[attr-defined]
    async with (
        Database(settings, "runner", tables) as database,
        Outbox(database, producer, settings),
    ):
        yield database


def task(task_id: str) -> events_pb2.TaskEvent:
    return events_pb2.TaskEvent(task_id=task_id, kind=events_pb2.TASK_EVENT_KIND_ASSIGNED)


def recording_handler(fail_task: str | None = None) -> tuple[Handler, list[str]]:
    calls: list[str] = []

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        assert isinstance(envelope.message, events_pb2.TaskEvent)
        calls.append(envelope.message.task_id)
        if envelope.message.task_id == fail_task:
            raise RuntimeError("this task always fails")
        session.add(Effect(task_id=envelope.message.task_id))

    return handle, calls


async def effects(db: Database) -> list[str]:
    async with db.session() as session:
        return list((await session.exec(select(Effect.task_id).order_by(col(Effect.id)))).all())


async def committed(settings: Settings, topic: str, group: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return await consumer.committed(tp) or 0
    finally:
        await consumer.stop()


async def dead_letters(settings: Settings, topic: str, count: int) -> list[dict[str, bytes]]:
    consumer = AIOKafkaConsumer(
        dead_letter(topic), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    found: list[dict[str, bytes]] = []
    try:
        async with asyncio.timeout(15):
            while len(found) < count:
                batch = await consumer.getmany(timeout_ms=200)
                found += [dict(r.headers) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return found


async def run_until(runner: ConsumerRunner, check: Callable[[], Awaitable[bool]]) -> None:
    running = asyncio.create_task(runner.run())
    try:
        await eventually(check)
    finally:
        runner.stop()
        await asyncio.wait_for(running, 10)


async def test_each_event_applied_once_and_committed_after(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    for event_id, task_id in [("e1", "t1"), ("e2", "t2"), ("e1", "t1"), ("e3", "t3")]:
        await producer.publish(
            topic_name, Envelope(event_id=event_id, key="k", message=task(task_id))
        )
    handler, calls = recording_handler()
    runner = ConsumerRunner(settings=settings, topic=topic_name, group="g1", handler=handler, db=db)

    async def all_committed() -> bool:
        return await committed(settings, topic_name, "g1") == 4

    await run_until(runner, all_committed)
    assert await effects(db) == ["t1", "t2", "t3"]
    assert calls == ["t1", "t2", "t3"]

    # A new member of the group starts after the commit: nothing is applied again.
    again_handler, again_calls = recording_handler()
    await producer.publish(topic_name, Envelope(event_id="e4", key="k", message=task("t4")))
    rerun = ConsumerRunner(
        settings=settings, topic=topic_name, group="g1", handler=again_handler, db=db,
    )  # fmt: skip

    async def fourth_applied() -> bool:
        return "t4" in await effects(db)

    await run_until(rerun, fourth_applied)
    assert again_calls == ["t4"]


async def test_failing_record_is_retried_then_dead_lettered(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    for event_id, task_id in [("e1", "bad"), ("e2", "good")]:
        await producer.publish(
            topic_name, Envelope(event_id=event_id, key="k", message=task(task_id))
        )
    handler, calls = recording_handler(fail_task="bad")
    runner = ConsumerRunner(settings=settings, topic=topic_name, group="g2", handler=handler, db=db)

    async def good_applied() -> bool:
        return await effects(db) == ["good"]

    await run_until(runner, good_applied)
    assert calls == ["bad", "bad", "bad", "good"]
    [letter] = await dead_letters(settings, topic_name, 1)
    assert letter["dlq-error"] == b"RuntimeError: this task always fails"
    assert letter["dlq-attempts"] == b"3"
    assert letter["event-id"] == b"e1"
    assert letter["dlq-source"] == f"{topic_name}/0/0".encode()


async def test_undecodable_record_goes_straight_to_the_dead_letter_topic(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    await producer.publish_raw(topic_name, b"k", b"\xff\xfe not protobuf", [("schema", b"x.Y")])
    await producer.publish(topic_name, Envelope(event_id="e2", key="k", message=task("t2")))
    handler, calls = recording_handler()
    runner = ConsumerRunner(settings=settings, topic=topic_name, group="g3", handler=handler, db=db)

    async def second_applied() -> bool:
        return await effects(db) == ["t2"]

    await run_until(runner, second_applied)
    assert calls == ["t2"]
    [letter] = await dead_letters(settings, topic_name, 1)
    assert letter["dlq-error"] == b"UndecodableRecord: record has no event-id header"
    assert letter["dlq-attempts"] == b"0"


async def test_stop_returns_promptly_while_idle(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    handler, _ = recording_handler()
    runner = ConsumerRunner(settings=settings, topic=topic_name, group="g4", handler=handler, db=db)
    running = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 10)
    runner.stop()
    await asyncio.wait_for(running, 3)


async def test_ledger_is_written_with_the_effect(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    await producer.publish(topic_name, Envelope(event_id="only", key="k", message=task("t")))
    handler, _ = recording_handler()
    runner = ConsumerRunner(settings=settings, topic=topic_name, group="g5", handler=handler, db=db)

    async def applied() -> bool:
        return await effects(db) == ["t"]

    await run_until(runner, applied)
    async with db.session() as session:
        rows = (await session.exec(select(func.count()).select_from(PROCESSED_EVENT_TABLE))).one()
    assert rows == 1


class PollsSeen:
    """A stand-in for the Kafka consumer's polls: three records of partition 0, its end at
    `highwater`; counts the polls."""

    def __init__(self, highwater: int) -> None:
        self.tp = TopicPartition("t", 0)
        self._highwater = highwater
        self.polls: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        self.polls.append(timeout_ms)
        if len(self.polls) > 1:
            return {}
        return {self.tp: [SimpleNamespace(offset=n) for n in range(3)]}

    def highwater(self, tp: TopicPartition) -> int:
        return self._highwater


@pytest.mark.parametrize(("highwater", "polls"), [(3, 2), (500, 1)])
async def test_a_short_poll_lingers_for_more_only_at_the_end_of_its_partitions(
    settings: Settings, db: Database, highwater: int, polls: int
) -> None:
    # At the end (highwater 3) the poll waits for more to join its batch and looks again; behind
    # it (a backlog of 500) the next poll is there at once, and waiting would only slow it.
    settings = settings.model_copy(update={"consumer_linger_ms": 1, "consumer_batch_records": 100})
    handler, _ = recording_handler()
    runner = ConsumerRunner(settings=settings, topic="t", group="g", handler=handler, db=db)
    seen = PollsSeen(highwater)
    runner._consumer = seen
    batch = await runner._poll()
    assert [r.offset for r in batch[seen.tp]] == [0, 1, 2]
    assert len(seen.polls) == polls


async def test_fetches_are_answered_at_once_in_a_backlog_and_held_when_caught_up(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str
) -> None:
    # aiokafka's fetcher reads the wait from this attribute for each request: if a release
    # renames it, the runner's pacing silently stops and this test says so.
    settings = settings.model_copy(update={"consumer_batch_records": 100})
    await ensure_topics(settings.kafka_bootstrap, 2, 1, (topic_name,))
    await producer.publish_many(
        topic_name,
        [Envelope(event_id=f"e{n}", key=f"k{n % 7}", message=task(f"t{n}")) for n in range(400)],
    )
    handler, calls = recording_handler()
    runner = ConsumerRunner(settings=settings, topic=topic_name, group="g9", handler=handler, db=db)
    assert await runner._join()
    fetcher = runner._consumer._fetcher
    try:
        assert fetcher._fetch_max_wait_ms == 500
        batch: dict[TopicPartition, list[Any]] = {}
        async with asyncio.timeout(15):
            while not batch:
                batch = await runner._poll()
        await runner._record_lag()
        assert fetcher._fetch_max_wait_ms == 20  # 300 or more left: a backlog
        async with asyncio.timeout(30):
            while len(calls) < 400:
                await runner._process(batch)
                await runner._record_lag()
                batch = await runner._poll()
        await runner._record_lag()
        assert fetcher._fetch_max_wait_ms == 500
    finally:
        await runner._consumer.stop()
