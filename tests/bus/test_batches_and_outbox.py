"""Batches, the outbox relay, replay to a new broker and retention, on the real embedded broker."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY
from sqlalchemy import Connection, event, func, insert, update
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import outbox as outbox_module
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.envelope import Envelope
from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX, OUTBOX_TABLES, Outbox, mark_published, stage
from gridline.bus.producer import EventProducer
from gridline.bus.retention import Retention
from gridline.bus.topics import dead_letter, ensure_topics
from gridline.db import BeforeCommit, Database
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from gridline.timestamps import now
from tests.bus.test_consumer_runner import Effect, dead_letters, effects, task
from tests.helpers import database_settings, eventually

TABLES = [PROCESSED_EVENT_TABLE, *OUTBOX_TABLES, Effect.__table__]  # type: ignore[attr-defined]


@pytest.fixture
async def plain_db(settings: Settings) -> AsyncIterator[Database]:
    async with Database(settings, "batches", TABLES) as database:
        yield database


async def event_ids_on(bootstrap: str, topic: str, count: int) -> Counter[str]:
    """Event ids of the first `count` records of a topic (waits for them)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: Counter[str] = Counter()
    try:
        async with asyncio.timeout(20):
            while sum(found.values()) < count:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    found.update(dict(r.headers)["event-id"].decode() for r in records)
    finally:
        await consumer.stop()
    return found


def committed_writes(db: Database) -> list[set[tuple[str, str]]]:
    """From now on, what each committed transaction of `db` wrote: (statement, table) pairs."""
    transactions: list[set[tuple[str, str]]] = []

    def wrote(conn: Connection, _c: object, statement: str, *_: object) -> None:
        verb, *words = statement.split()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            table = words[0] if verb == "UPDATE" else words[1]  # INSERT INTO t, DELETE FROM t
            conn.info.setdefault("wrote", set()).add((verb, table.strip('"')))

    def committed(conn: Connection) -> None:
        if done := conn.info.pop("wrote", None):
            transactions.append(done)

    engine = db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", wrote)
    event.listen(engine, "commit", committed)
    event.listen(engine, "rollback", lambda conn: conn.info.pop("wrote", None))
    return transactions


async def outbox_rows(db: Database, count: int) -> list[int]:
    """Insert `count` unpublished outbox rows; their ids, in order."""
    async with db.session() as session:
        rows = [
            {"topic": "t", "event_id": f"e{n}", "value": b"", "headers": "{}"}
            | {"created_at": now()}
            for n in range(count)
        ]
        await session.exec(insert(OUTBOX), params=rows)
    async with db.session() as session:
        return sorted((await session.exec(select(OUTBOX.c.id))).all())


async def unmarked(db: Database) -> int:
    """Outbox rows not marked published."""
    async with db.session() as session:
        waiting = select(func.count()).where(OUTBOX.c.published_at.is_(None))
        return (await session.exec(waiting)).one()


def batches(topic: str, group: str, mode: str) -> float:
    labels = {"topic": topic, "group": group, "mode": mode}
    return REGISTRY.get_sample_value("gridline_consumer_batches_total", labels) or 0.0


async def test_a_poison_record_in_a_batch_is_dead_lettered_once_and_the_rest_applied_once(
    settings: Settings, plain_db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    ids = [f"t{i}" for i in range(40)]
    envelopes = [Envelope(event_id=f"e-{t}", key="k", message=task(t)) for t in ids]
    assert all(await producer.publish_many(topic_name, envelopes))
    calls: Counter[str] = Counter()

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        assert isinstance(envelope.message, type(task("")))
        calls[envelope.message.task_id] += 1
        if envelope.message.task_id == "t17":
            raise RuntimeError("poison")
        session.add(Effect(task_id=envelope.message.task_id))

    async with (
        Outbox(plain_db, producer, settings),
        ConsumerRunner(
            settings=settings, topic=topic_name, group="poison", db=plain_db, handler=handle
        ),
    ):

        async def all_applied() -> bool:
            return len(await effects(plain_db)) == 39

        await eventually(all_applied, within=20)
        [letter] = await dead_letters(settings, topic_name, 1)
    assert letter["event-id"] == b"e-t17"
    assert letter["dlq-attempts"] == b"3"
    assert sorted(await effects(plain_db)) == sorted(t for t in ids if t != "t17")
    # The whole batch was tried together once, then record by record.
    assert batches(topic_name, "poison", "fallback") == 1
    assert calls["t17"] == 3
    assert calls["t16"] == 2 and calls["t18"] == 1  # before the poison: batch, then alone


async def test_what_a_batch_handler_leaves_to_write_commits_with_the_ledger_marks(
    settings: Settings, plain_db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    transactions = committed_writes(plain_db)
    given: list[list[str]] = []

    async def handle(batch: Sequence[Envelope]) -> BeforeCommit:
        ids = [e.message.task_id for e in batch]
        given.append(ids)

        async def write(session: AsyncSession) -> None:
            session.add_all(Effect(task_id=task_id) for task_id in ids)
            await session.flush()
            if "t-poison" in ids and len(ids) > 1:
                raise RuntimeError("the batch's write failed")

        return write

    async def publish(ids: list[str]) -> None:
        before = len(await effects(plain_db))
        envelopes = [Envelope(event_id=f"e-{t}", key="k", message=task(t)) for t in ids]
        assert all(await producer.publish_many(topic_name, envelopes))

        async def applied() -> bool:
            return len(await effects(plain_db)) == before + len(ids)

        await eventually(applied, within=20)

    async with (
        Outbox(plain_db, producer, settings),
        ConsumerRunner(
            settings=settings, topic=topic_name, group="leftover", db=plain_db, batch_handler=handle
        ),
    ):
        await publish([f"t{i}" for i in range(10)])
        # A batch whose write fails is rolled back with its marks, then written record by record.
        await publish(["t10", "t-poison", "t11"])
        async with plain_db.session() as session:
            counted = select(func.count()).select_from(PROCESSED_EVENT_TABLE)
            marked = (await session.exec(counted)).one()
    assert sorted(await effects(plain_db)) == sorted([*(f"t{i}" for i in range(12)), "t-poison"])
    assert marked == 13
    assert given[-3:] == [["t10"], ["t-poison"], ["t11"]]
    assert batches(topic_name, "leftover", "fallback") == 1
    # Every write of the handler's was in the transaction that marked its events processed.
    inserted = [{table for verb, table in t if verb == "INSERT"} for t in transactions]
    assert inserted and all(t == {"test_effect", "processed_event"} for t in inserted)


async def test_a_database_outage_pauses_the_consumer_and_dead_letters_nothing(
    settings: Settings, plain_db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    await producer.publish(topic_name, Envelope(event_id="e1", key="k", message=task("t1")))
    failures = 5  # more than consumer_max_attempts

    async def handle(envelope: Envelope, session: AsyncSession) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        session.add(Effect(task_id="t1"))

    async with (
        Outbox(plain_db, producer, settings),
        ConsumerRunner(
            settings=settings, topic=topic_name, group="outage", db=plain_db, handler=handle
        ),
    ):

        async def applied() -> bool:
            return await effects(plain_db) == ["t1"]

        await eventually(applied, within=30)
    consumer = AIOKafkaConsumer(
        dead_letter(topic_name), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        assert not any((await consumer.getmany(timeout_ms=1000)).values())
    finally:
        await consumer.stop()


async def test_the_next_transaction_marks_what_the_relay_published(
    settings: Settings,
    plain_db: Database,
    producer: EventProducer,
    topic_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    # Long enough that the test's next commit comes first on a slow machine.
    monkeypatch.setattr(outbox_module, "_MARK_WITHIN_SECONDS", 2.0)
    transactions = committed_writes(plain_db)

    def on_outbox() -> list[set[str]]:
        """What each committed transaction did to the outbox table."""
        done = ({verb for verb, table in t if table == OUTBOX.name} for t in transactions)
        return [verbs for verbs in done if verbs]

    async def fail_when_asked(session: AsyncSession) -> None:
        if session.info.get("fail"):
            # Past the relay's bound: it looked for marks while this transaction held them.
            await asyncio.sleep(0.5)
            raise RuntimeError("the commit failed")

    async def commit(event_id: str, fail: bool = False) -> None:
        async with plain_db.session() as session:
            stage(session, topic_name, Envelope(event_id=event_id, key="k", message=task("")))
            session.info["fail"] = fail

    async def all_marked() -> bool:
        return await unmarked(plain_db) == 0

    def confirmed() -> float:
        return REGISTRY.get_sample_value("gridline_outbox_published_total") or 0.0

    async def published(event_id: str) -> None:
        before = confirmed()
        await commit(event_id)

        async def relayed() -> bool:
            return confirmed() > before

        await eventually(relayed, within=5)

    async with Outbox(plain_db, producer, settings):
        await published("e1")
        transactions.clear()
        # Published, so marked by the next transaction that writes rows, with its own.
        await published("e2")
        assert on_outbox() == [{"INSERT", "UPDATE"}]
        assert await unmarked(plain_db) == 1
        # No transaction comes: the relay marks e2 in one of its own.
        transactions.clear()
        await eventually(all_marked, within=5)
        assert on_outbox() == [{"UPDATE"}]
        # A transaction that took marks and did not commit gives them back, and the relay
        # marks them within its bound, though its own had run out while they were taken.
        monkeypatch.setattr(outbox_module, "_MARK_WITHIN_SECONDS", 0.2)
        plain_db.before_commit.append(fail_when_asked)  # after the outbox's own hook
        await published("e3")
        with pytest.raises(RuntimeError):
            await commit("e4", fail=True)
        assert await unmarked(plain_db) == 1
        await eventually(all_marked, within=3)
    # Each once: a row marked late is not published again.
    assert await event_ids_on(settings.kafka_bootstrap, topic_name, 3) == Counter(
        {"e1": 1, "e2": 1, "e3": 1}
    )


async def test_the_relay_publishes_what_was_committed_during_a_broker_outage(
    tmp_path: Path, topic_name: str
) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        kafka_confirm_timeout_seconds=1.0,
        data_dir=tmp_path,
    )
    await ensure_topics(broker.bootstrap, 1, 1, (topic_name,))
    try:
        async with (
            Database(settings, "relay", TABLES) as db,
            EventProducer(settings) as producer,
            Outbox(db, producer, settings) as outbox,
        ):
            broker.stop()
            # Effects commit while the broker is away; nothing waits for it.
            for n in range(30):
                async with db.session() as session:
                    session.add(Effect(task_id=f"t{n}"))
                    stage(
                        session, topic_name, Envelope(event_id=f"e{n}", key="k", message=task(""))
                    )
            assert await unmarked(db) == 30
            # The relay's first try has run out (a try still in flight when the broker comes back
            # writes as it starts listening, racing the topic's creation below, and tansu may
            # drop what it acked then); the next comes a second after it.
            await asyncio.sleep(settings.kafka_confirm_timeout_seconds + 0.2)
            # The broker is back (the same address, empty): the relay publishes every row.
            broker.process = None
            broker.start()
            await ensure_topics(broker.bootstrap, 1, 1, (topic_name,))
            await asyncio.wait_for(outbox.drained(), 30)
        found = await event_ids_on(broker.bootstrap, topic_name, 30)
        assert set(found) == {f"e{n}" for n in range(30)}
    finally:
        broker.stop()


async def test_a_new_broker_epoch_replays_the_window_once(
    settings: Settings, plain_db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    replaying = settings.model_copy(update={"outbox_replay_seconds": 3600, "broker_epoch": "first"})
    async with Outbox(plain_db, producer, replaying) as outbox:
        await asyncio.wait_for(outbox.replayed.wait(), 10)
        for n in range(5):
            async with plain_db.session() as session:
                stage(session, topic_name, Envelope(event_id=f"e{n}", key="k", message=task("")))
        await asyncio.wait_for(outbox.drained(), 10)
    # One row is older than the window: not replayed.
    async with plain_db.session() as session:
        await session.exec(
            update(OUTBOX)
            .where(OUTBOX.c.event_id == "e0")
            .values(created_at=now() - timedelta(hours=2))
        )
    second = replaying.model_copy(update={"broker_epoch": "second"})
    async with Outbox(plain_db, producer, second) as outbox:
        await asyncio.wait_for(outbox.replayed.wait(), 10)
    async with Outbox(plain_db, producer, second) as outbox:  # the same epoch: nothing again
        await asyncio.wait_for(outbox.replayed.wait(), 10)
    found = await event_ids_on(settings.kafka_bootstrap, topic_name, 9)
    assert found == Counter({"e0": 1, "e1": 2, "e2": 2, "e3": 2, "e4": 2})


async def test_retention_purges_old_ledger_marks_and_published_rows_only(
    settings: Settings, plain_db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    kept = settings.model_copy(
        update={"ledger_retention_seconds": 3600, "outbox_retention_seconds": 3600}
    )
    async with Outbox(plain_db, producer, kept) as outbox:
        async with plain_db.session() as session:
            for n in range(4):
                stage(session, topic_name, Envelope(event_id=f"e{n}", key="k", message=task("")))
        await asyncio.wait_for(outbox.drained(), 10)
        old = now() - timedelta(hours=2)
        async with plain_db.session() as session:
            await session.exec(
                update(OUTBOX).where(OUTBOX.c.event_id.in_(["e0", "e1"])).values(created_at=old)
            )
            await session.exec(
                PROCESSED_EVENT_TABLE.insert(),
                params=[
                    {"consumer": "g", "event_id": "old", "processed_at": old},
                    {"consumer": "g", "event_id": "new", "processed_at": now()},
                ],
            )
        async with Retention(plain_db, kept, outbox):
            await asyncio.sleep(0.5)
    async with plain_db.session() as session:
        left = (await session.exec(select(OUTBOX.c.event_id).order_by(OUTBOX.c.id))).all()
        marks = (await session.exec(select(PROCESSED_EVENT_TABLE.c.event_id))).all()
    assert list(left) == ["e2", "e3"]
    assert list(marks) == ["new"]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """SQLite files, or a fresh PostgreSQL database (with GRIDLINE_TEST_POSTGRES_URL)."""
    return database_settings(request, Settings(data_dir=tmp_path))


async def test_marking_published_marks_exactly_the_rows_confirmed(any_store: Settings) -> None:
    async with Database(any_store, "marks", TABLES) as db:
        sent: list[int] = []  # the parameters of each UPDATE the database receives

        def count(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
            if statement.startswith("UPDATE"):
                sent.append(len(params) if isinstance(params, dict | list | tuple) else 0)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        ids = await outbox_rows(db, 200)
        # Runs with gaps between them, short runs, single ids and the ends.
        confirmed = [*ids[0:10], ids[11], *ids[13:40], ids[41], *ids[43:45], *ids[50:60]]
        confirmed += ids[190:200]
        async with db.session() as session:
            await mark_published(session, confirmed)
        # Four ranges (two parameters each), the four other ids, and the time.
        assert sent == [4 * 2 + 4 + 1]
        # What replicas inserting at once interleave: 20 single ids, and 20 runs of three ids
        # of which the mark writes 16 as ranges and lists the rest.
        interleaved = ids[60:100:2] + [n for at in range(100, 180, 4) for n in ids[at : at + 3]]
        async with db.session() as session:
            await mark_published(session, interleaved)
        assert sent[1:] == [16 * 2 + 20 + 4 * 3 + 1]
        async with db.session() as session:
            published = await session.exec(
                select(OUTBOX.c.id).where(OUTBOX.c.published_at.is_not(None))
            )
            assert sorted(published.all()) == sorted(confirmed + interleaved)


async def test_two_marks_of_the_same_rows_do_not_wait_for_each_other(
    postgres_database: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_database)
    async with Database(settings, "overlap", TABLES) as db:
        ids = await outbox_rows(db, 20)
        # Two transactions open at once marking overlapping rows (a replica's relay and a sweep
        # of another's): the second leaves the rows the first holds to it instead of waiting.
        async with db.session() as first:
            await mark_published(first, ids[:15])
            async with db.session() as second:
                await asyncio.wait_for(mark_published(second, ids[5:]), 5)
        assert await unmarked(db) == 0


async def test_the_relay_publishes_each_row_under_its_own_id(
    settings: Settings, any_store: Settings, topic_name: str
) -> None:
    store = settings.model_copy(update={"database_url": any_store.database_url})
    await ensure_topics(store.kafka_bootstrap, 1, 1, (topic_name,))
    async with (
        Database(store, "pairs", TABLES) as db,
        EventProducer(store) as producer,
        Outbox(db, producer, store) as outbox,
    ):
        # The rows the relay is handed, each with the id it marks published once confirmed.
        handed: list[tuple[int, str]] = []
        enqueue = outbox._enqueue

        def capture(rows: Sequence[outbox_module._Row]) -> None:
            handed.extend((row.id, json.loads(row.headers)["event-id"]) for row in rows)
            enqueue(rows)

        outbox._enqueue = capture  # type: ignore[method-assign]
        for first in (0, 1500):
            async with db.session() as session:
                for n in range(first, first + 1500):
                    stage(
                        session, topic_name, Envelope(event_id=f"e{n}", key="k", message=task("t"))
                    )
        await outbox.drained()
        async with db.session() as session:
            rows = (await session.exec(select(OUTBOX.c.id, OUTBOX.c.event_id))).all()
            written: dict[int, str] = dict(rows)
    assert len(handed) == 3000
    assert all(written[row_id] == event_id for row_id, event_id in handed)
    assert [event_id for _, event_id in handed] == [f"e{n}" for n in range(3000)]
