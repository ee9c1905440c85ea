"""`gridline dlq` against the real embedded broker: list dead letters, replay them exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner, Result

from gridline.bus.consumer import ConsumerRunner
from gridline.bus.envelope import Envelope
from gridline.bus.ledger import PROCESSED_EVENT_TABLE, ServiceLedger
from gridline.bus.outbox import OUTBOX_TABLES, Outbox
from gridline.bus.producer import EventProducer
from gridline.bus.topics import ensure_topics
from gridline.contracts.v1 import events_pb2
from gridline.db import Database
from gridline.settings import Settings
from gridline_cli import dlq
from gridline_cli.dlq import DlqError, Ledgers, read_dead_letters, service_ledgers
from gridline_cli.main import app
from services.assignment import consumers as assignment
from services.escalation import consumers as escalation
from services.notify import consumers as notify
from tests.helpers import eventually


class DlqEffect(SQLModel, table=True):
    """What the test handler did: one row per applied event."""

    __tablename__ = "test_dlq_effect"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str


@pytest.fixture
def max_attempts() -> int:
    return 2


@pytest.fixture
def group(topic_name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's consumer group, declared as assignment's the way a service declares its own.

    A group of its own, because the session's broker holds on to the members of a real group
    that earlier tests left until their sessions expire.
    """
    name = f"assignment.{topic_name}"
    declared = (ServiceLedger("assignment", frozenset({name})), *service_ledgers())
    monkeypatch.setattr(dlq, "service_ledgers", lambda: declared)
    return name


@pytest.fixture
async def db(settings: Settings, producer: EventProducer) -> AsyncIterator[Database]:
    # The database `gridline dlq replay --data-dir` opens for the group declared as assignment's.
    tables = [PROCESSED_EVENT_TABLE, *OUTBOX_TABLES, DlqEffect.__table__]  # type: ignore[attr-defined]
    async with (
        Database(settings, "assignment", tables) as database,
        Outbox(database, producer, settings),
    ):
        yield database


class Handler:
    """Applies task events; the task `bad` fails while `broken`, then waits for `deployed`."""

    def __init__(self) -> None:
        self.broken = True
        self.deployed = asyncio.Event()
        self.calls: list[str] = []

    async def __call__(self, envelope: Envelope, session: AsyncSession) -> None:
        assert isinstance(envelope.message, events_pb2.TaskEvent)
        task_id = envelope.message.task_id
        self.calls.append(task_id)
        if task_id == "bad":
            if self.broken:
                raise RuntimeError("the handler has a bug")
            await self.deployed.wait()
        session.add(DlqEffect(task_id=task_id))


async def effects(db: Database) -> list[str]:
    async with db.session() as session:
        return list(
            (await session.exec(select(DlqEffect.task_id).order_by(col(DlqEffect.id)))).all()
        )


async def applied(db: Database, wanted: list[str]) -> None:
    async def done() -> bool:
        return await effects(db) == wanted

    await eventually(done, within=15)


async def consumed_all(settings: Settings, group: str, topic: str) -> bool:
    """Whether the group has committed every record on the topic's partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        end: int = (await consumer.end_offsets([tp]))[tp]
        committed: int | None = await consumer.committed(tp)
        return committed == end
    finally:
        await consumer.stop()


async def records_on(settings: Settings, topic: str) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        found: list[ConsumerRecord] = []
        while len(found) < end:
            batch = await consumer.getmany(tp, timeout_ms=200)
            found += batch.get(tp, [])
        return found
    finally:
        await consumer.stop()


async def gridline(*args: str) -> Result:
    """Run the `gridline` CLI in a thread (it runs its own event loop), set up for tansu."""
    runner = CliRunner(env={"GRIDLINE_KAFKA_IDEMPOTENCE": "false"})
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def test_dead_letter_is_listed_then_replayed_once(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str, group: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    bad = Envelope(event_id="e-bad", key="k1", message=events_pb2.TaskEvent(task_id="bad"))
    good = Envelope(event_id="e-good", key="k2", message=events_pb2.TaskEvent(task_id="good"))
    for envelope in (bad, good):
        await producer.publish(topic_name, envelope)
    handler = Handler()
    runner = ConsumerRunner(
        settings=settings, topic=topic_name, group=group, handler=handler, db=db,
    )  # fmt: skip
    async with runner:
        await applied(db, ["good"])
        await check_list_and_replay(settings, db, handler, runner.group, topic_name, bad)


async def check_list_and_replay(
    settings: Settings,
    db: Database,
    handler: Handler,
    group: str,
    topic_name: str,
    bad: Envelope,
) -> None:
    assert handler.calls == ["bad", "bad", "good"]
    kafka = ("--kafka", settings.kafka_bootstrap)

    listed = await gridline("dlq", "list", "--topic", topic_name, "--json", *kafka)
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    [letter] = document[f"{topic_name}.dlq"]["records"]
    assert document[f"{topic_name}.dlq"]["count"] == 1
    assert letter["event_id"] == "e-bad"
    assert letter["error"] == "RuntimeError: the handler has a bug"
    assert letter["source"] == f"{topic_name}/0/0"
    assert letter["group"] == group
    assert letter["schema"] == bad.schema
    text = await gridline("dlq", "list", "--topic", topic_name, *kafka)
    assert "1 dead-lettered" in text.stdout
    assert "RuntimeError: the handler has a bug" in text.stdout

    # Grows by the data directory below.
    replay: tuple[str, ...] = ("dlq", "replay", "--topic", topic_name, *kafka, "--data-dir")
    elsewhere = await gridline(*replay, str(settings.data_dir / "elsewhere"))
    assert elsewhere.exit_code == 1
    assert f"no ledger of {group} at" in elsewhere.output
    replay = (*replay, str(settings.data_dir))
    dry = await gridline(*replay, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would be replayed" in dry.stdout
    assert len(await records_on(settings, topic_name)) == 2

    # The fix is rolling out: the consumer takes the replayed record and waits to apply it.
    handler.broken = False
    first = await gridline(*replay)
    assert first.exit_code == 0, first.output
    assert "published 1, skipped 0" in first.stdout
    [*_, replayed] = await records_on(settings, topic_name)
    assert (replayed.key, replayed.value) == (b"k1", bad.message.SerializeToString())
    headers = dict(replayed.headers)
    assert headers["event-id"] == b"e-bad"
    assert not [name for name in headers if name.startswith("dlq-")]

    # Run again before the consumer applied it (as after a crash between release and publish):
    # published again, and the consumer's dedup still applies it once.
    again = await gridline(*replay)
    assert "published again" in again.stdout
    handler.deployed.set()
    await applied(db, ["good", "bad"])
    await eventually(lambda: consumed_all(settings, group, topic_name), within=15)

    after = await gridline(*replay)
    assert after.exit_code == 0, after.output
    assert "published 0, skipped 1" in after.stdout
    assert "applied after an earlier replay" in after.stdout
    assert len(await records_on(settings, topic_name)) == 4
    assert await effects(db) == ["good", "bad"]
    assert handler.calls == ["bad", "bad", "good", "bad"]
    assert len((await read_dead_letters(settings, topic_name))[f"{topic_name}.dlq"]) == 1


async def test_unknown_topic_names_the_topics_with_dead_letters(
    settings: Settings, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    result = await gridline(
        "dlq", "list", "--topic", "nope.v1", "--kafka", settings.kafka_bootstrap
    )
    assert result.exit_code == 1
    assert "no dead-letter topic nope.v1.dlq" in result.output
    assert topic_name in result.output


async def test_unreachable_broker_is_one_line_and_exit_2() -> None:
    result = await gridline("dlq", "replay", "--topic", "reports.v1", "--kafka", "127.0.0.1:1")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "cannot reach the broker at 127.0.0.1:1" in result.output


@pytest.mark.parametrize(
    ("consumer_group", "service"),
    [
        (assignment.GROUP, "assignment"),
        (assignment.TASKS_GROUP, "assignment"),
        (escalation.GROUP, "escalation"),
        (notify.GROUP, "notify"),
    ],
)
async def test_each_consumer_group_is_found_in_its_service_ledger(
    settings: Settings, consumer_group: str, service: str
) -> None:
    async with AsyncExitStack() as stack:
        ledgers = Ledgers(settings, stack, service_ledgers())
        assert ledgers.owner(consumer_group).service == service


async def test_a_group_no_service_declares_is_refused(settings: Settings) -> None:
    async with AsyncExitStack() as stack:
        ledgers = Ledgers(settings, stack, service_ledgers())
        with pytest.raises(DlqError) as refused:
            ledgers.owner("assignment.elsewhere")
    assert str(refused.value) == (
        "consumer group 'assignment.elsewhere' belongs to no known service "
        "(assignment, escalation, notify)"
    )
