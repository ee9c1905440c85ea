"""Durable deadlines with an injectable clock: plans per risk, cancellation, restarts, replicas."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from gridline.bus import topics
from gridline.bus.outbox import Outbox
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.escalation import storage
from services.escalation.deadlines import DeadlineWatcher, fire_due
from services.escalation.domain import HIGH_RISK_REASON, Action
from services.escalation.flows import Change, change_task
from services.escalation.policy import every_level_after, load_policy
from tests.escalation.conftest import START, Clock, new_task, static_chain
from tests.escalation.records import published
from tests.helpers import database_settings, eventually

SHIPPED = load_policy(
    Path(__file__).parents[2] / "services/escalation/deadlines.yaml", timedelta(minutes=30)
)
EVERY_30 = every_level_after(timedelta(minutes=30))
LIAISON = common_pb2.CHAIN_LEVEL_LIAISON
COMMUNITY = common_pb2.CHAIN_LEVEL_COMMUNITY
TOWNSHIP = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
COUNTY = common_pb2.CHAIN_LEVEL_COUNTY_OFFICE


async def escalations(db: Database, task_id: str) -> list[tuple[int, str, str]]:
    async with db.session() as session:
        found = await storage.escalations_of(session, task_id)
    return [(e.level, e.group_id, e.reason) for e in found]


async def notices_of(
    settings: Settings, task_id: str, outbox: Outbox | None
) -> list[events_pb2.Notification]:
    return [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == task_id
    ]  # fmt: skip


async def test_a_high_risk_origin_goes_up_at_once_then_at_each_configured_deadline(
    db: Database, outbox: Outbox, settings: Settings, clock: Clock
) -> None:
    task = new_task(SHIPPED, clock(), origin_risk=common_pb2.RISK_LEVEL_HIGH)
    async with db.session() as session:
        session.add(task)

    async def fire_at(minutes: float) -> list[str]:
        clock.moment = START + timedelta(minutes=minutes)
        return await fire_due(db, static_chain, SHIPPED, clock())

    assert len(await fire_at(0)) == 1  # at once: the community
    assert await fire_at(29) == []
    assert len(await fire_at(30)) == 2  # liaison and community
    assert await fire_at(119) == []
    assert len(await fire_at(120)) == 1  # township office
    assert len(await fire_at(240)) == 1  # county office
    assert await fire_at(10_000) == []
    overdue = "包户干部未在时限内确认接收"
    assert await escalations(db, task.task_id) == [
        (COMMUNITY, f"group-{COMMUNITY}", HIGH_RISK_REASON),
        (LIAISON, f"group-{LIAISON}", overdue),
        (COMMUNITY, f"group-{COMMUNITY}", overdue),
        (TOWNSHIP, f"group-{TOWNSHIP}", overdue),
        (COUNTY, f"group-{COUNTY}", overdue),
    ]
    notices = await notices_of(settings, task.task_id, outbox)
    # Keyed by recipient group, so ordered per group only.
    assert sorted(n.recipient.level for n in notices) == [
        LIAISON,
        COMMUNITY,
        COMMUNITY,
        TOWNSHIP,
        COUNTY,
    ]
    assert len({n.notification_id for n in notices}) == 5


async def test_a_medium_risk_task_acknowledged_in_time_never_goes_up(
    db: Database, clock: Clock
) -> None:
    task = new_task(SHIPPED, clock(), origin_risk=common_pb2.RISK_LEVEL_MEDIUM)
    async with db.session() as session:
        session.add(task)
    assert await fire_due(db, static_chain, SHIPPED, clock()) == []
    clock.advance(timedelta(minutes=119))
    await change_task(db, SHIPPED, task.task_id, Change(Action.ACKNOWLEDGE, "c", "page"), clock)
    clock.advance(timedelta(days=2))
    assert await fire_due(db, static_chain, SHIPPED, clock()) == []
    assert await escalations(db, task.task_id) == []


async def test_levels_missing_from_the_chain_or_below_the_assignee_are_skipped(
    db: Database, clock: Clock
) -> None:
    # A triage task held by the community: liaison and community steps tell nobody.
    task = new_task(EVERY_30, clock(), triage=True)
    async with db.session() as session:
        session.add(task)
    for minutes in (30, 60, 90, 120, 150):
        clock.moment = START + timedelta(minutes=minutes)
        await fire_due(db, static_chain, EVERY_30, clock())
    assert [level for level, _, _ in await escalations(db, task.task_id)] == [TOWNSHIP, COUNTY]


async def test_chains_are_asked_once_per_node_with_no_transaction_open(
    db: Database, clock: Clock
) -> None:
    tasks = [new_task(EVERY_30, clock()) for _ in range(3)]
    tasks[2].node_id = "household-2"
    async with db.session() as session:
        session.add_all(tasks)
    asked: list[str] = []

    async def chain_of(node_id: str) -> list[common_pb2.Responsible]:
        # No session holds a connection, so no transaction (nor row lock) is open.
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        asked.append(node_id)
        return await static_chain(node_id)

    fired = await fire_due(db, chain_of, EVERY_30, clock.advance(timedelta(minutes=31)))
    assert len(fired) == 3
    assert sorted(asked) == ["household-1", "household-2"]


async def test_a_step_another_pass_fired_while_chains_were_asked_is_not_fired_again(
    db: Database, outbox: Outbox, settings: Settings, clock: Clock
) -> None:
    task = new_task(EVERY_30, clock())
    async with db.session() as session:
        session.add(task)
    moment = clock.advance(timedelta(minutes=31))
    other: list[str] = []

    async def chain_of(node_id: str) -> list[common_pb2.Responsible]:
        # Another replica fires the same step in the meantime.
        other.extend(await fire_due(db, static_chain, EVERY_30, moment))
        return await static_chain(node_id)

    assert await fire_due(db, chain_of, EVERY_30, moment) == []
    assert len(other) == 1
    assert [e[0] for e in await escalations(db, task.task_id)] == [LIAISON]
    assert [n.recipient.level for n in await notices_of(settings, task.task_id, outbox)] == [
        LIAISON
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def stored_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The settings of a database that outlives a process: an SQLite file or PostgreSQL."""
    return database_settings(request, settings)


async def test_a_deadline_passed_while_stopped_fires_once_on_restart(
    stored_settings: Settings, settings: Settings, producer: EventProducer, clock: Clock
) -> None:
    async with (
        Database(stored_settings, "escalation", storage.TABLES) as db,
        Outbox(db, producer, settings),
    ):
        task = new_task(EVERY_30, clock())
        async with db.session() as session:
            session.add(task)
        async with DeadlineWatcher(db, static_chain, EVERY_30, 0.05, clock) as watcher:
            await asyncio.sleep(0.2)
            assert await watcher.alive()
        assert await escalations(db, task.task_id) == []

    # Down across the deadline; a new process (engine, watcher) on the same file.
    clock.advance(timedelta(minutes=45))
    async with (
        Database(stored_settings, "escalation", storage.TABLES) as db,
        Outbox(db, producer, settings),
    ):

        async def escalated() -> bool:
            return bool(await escalations(db, task.task_id))

        async with DeadlineWatcher(db, static_chain, EVERY_30, 0.05, clock):
            await eventually(escalated, within=30)
            await asyncio.sleep(0.3)  # more passes over the same moment
        assert [e[0] for e in await escalations(db, task.task_id)] == [LIAISON]
        async with db.session() as session:
            again = await storage.get_task(session, task.task_id)
        assert again is not None and again.deadline_at == START + timedelta(minutes=60)
    # The outbox published what the watcher fired as it stopped.
    assert [n.recipient.level for n in await notices_of(settings, task.task_id, None)] == [LIAISON]


async def test_two_replicas_on_postgresql_fire_each_of_1000_deadlines_once(
    postgres_database: str, broker: EmbeddedBroker, tmp_path: Path, clock: Clock
) -> None:
    settings = Settings(
        database_url=postgres_database, kafka_bootstrap=broker.bootstrap, kafka_idempotence=False
    )
    async with Database(settings, "escalation", storage.TABLES) as db:
        tasks = [new_task(EVERY_30, clock()) for _ in range(1000)]
        async with db.session() as session:
            session.add_all(tasks)
    moment = clock.advance(timedelta(minutes=31))
    go = tmp_path / "go"
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.escalation.replica", postgres_database,
            broker.bootstrap, moment.isoformat(), str(go),
            stdout=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        for _ in range(2)
    ]  # fmt: skip
    # Firing takes well under a second: start both only once both are set up.
    for replica in replicas:
        assert replica.stdout is not None
        assert await asyncio.wait_for(replica.stdout.readline(), 120) == b"ready\n"
    go.touch()
    outputs = [(await asyncio.wait_for(r.communicate(), 300))[0] for r in replicas]
    assert [replica.returncode for replica in replicas] == [0, 0]
    first, second = (json.loads(out) for out in outputs)
    assert first and second, "both replicas took part"
    assert not set(first) & set(second)
    assert len(first) + len(second) == 1000

    ids = {t.task_id for t in tasks}
    raised = [
        e.message.task_id
        # Each replica published what it fired before it exited.
        for e in await published(broker.bootstrap, topics.ESCALATIONS, after=None)
        if isinstance(e.message, events_pb2.EscalationRaised) and e.message.task_id in ids
    ]
    assert len(raised) == 1000 and set(raised) == ids
    async with Database(settings, "escalation", storage.TABLES) as db, db.session() as session:
        rows = (await session.exec(select(storage.Escalation.task_id))).all()
        assert sorted(row for row in rows if row in ids) == sorted(ids)
