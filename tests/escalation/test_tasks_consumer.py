"""The tasks consumer as the runner drives it: what it skips, and a batch in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import time, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.settings import Settings
from gridline.timestamps import to_timestamp
from services.escalation import storage
from services.escalation.consumers import accepts, task_handler
from services.escalation.measures import FollowUp
from services.escalation.policy import load_policy
from tests.escalation.conftest import Clock
from tests.helpers import database_settings

SHIPPED = load_policy(
    Path(__file__).parents[2] / "services/escalation/deadlines.yaml", timedelta(minutes=30)
)
HIGH = common_pb2.RISK_LEVEL_HIGH
OPENED = "gridline_escalation_tasks_opened_total"


def envelope(event_id: str, message: events_pb2.TaskEvent | events_pb2.Notification) -> Envelope:
    return Envelope(event_id=event_id, key="household-1", message=message)


def assigned(task_id: str, summary: str) -> events_pb2.TaskEvent:
    return events_pb2.TaskEvent(
        task_id=task_id, kind=events_pb2.TASK_EVENT_KIND_ASSIGNED, report_id=f"r-{task_id}",
        household_id="household-1", grid_id="grid-1", summary=summary,
        assignee=common_pb2.Responsible(level=common_pb2.CHAIN_LEVEL_CADRE, group_id="group-1"),
        origin_risk=common_pb2.RISK_LEVEL_MEDIUM, decided_risk=common_pb2.RISK_LEVEL_MEDIUM,
    )  # fmt: skip


def test_only_assignment_s_events_are_acted_on() -> None:
    acted_on = {events_pb2.TASK_EVENT_KIND_ASSIGNED, events_pb2.TASK_EVENT_KIND_RISK_RAISED}
    for kind in events_pb2.TaskEventKind.values():
        event = events_pb2.TaskEvent(task_id="t", kind=kind)
        assert accepts(envelope("e", event)) is (kind in acted_on), kind
    # Not a task event at all: taken, so that the handler refuses it into the dead letters.
    assert accepts(envelope("n", events_pb2.Notification(notification_id="n")))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings on SQLite and on PostgreSQL (each dialect has its own insert of a new task)."""
    return database_settings(request, settings)


@pytest.fixture
async def any_db(any_settings: Settings, producer: EventProducer) -> AsyncIterator[Database]:
    """Escalation's database with its outbox."""
    async with (
        Database(any_settings, "escalation", storage.TABLES) as database,
        Outbox(database, producer, any_settings),
    ):
        yield database


async def test_a_batch_stores_a_task_given_twice_once_and_applies_its_raise(
    any_db: Database, clock: Clock
) -> None:
    handle = task_handler(SHIPPED, clock)
    opened = REGISTRY.get_sample_value(OPENED, {"kind": "household"}) or 0.0
    raised = events_pb2.TaskEvent(
        task_id="t-twice", kind=events_pb2.TASK_EVENT_KIND_RISK_RAISED, decided_risk=HIGH,
        measure_id="home_quarantine_14d", measure_name="14天居家隔离",
    )  # fmt: skip
    # One transaction, as the runner applies a batch: later events see the earlier ones.
    async with any_db.session() as session:
        await handle(envelope("e1", assigned("t-twice", "first")), session)
        await handle(envelope("e2", assigned("t-twice", "second")), session)
        await handle(envelope("e3", raised), session)
    async with any_db.session() as session:
        task = await storage.get_task(session, "t-twice")
        trail = [c.action for c in await storage.changes_of(session, "t-twice")]
    assert task is not None
    # Raised to high: its immediate step is due now.
    assert (task.summary, task.origin_risk, task.deadline_at) == ("first", HIGH, clock())
    assert trail == ["raise_risk"]
    assert REGISTRY.get_sample_value(OPENED, {"kind": "household"}) == opened + 1


async def test_a_task_keeps_its_plan_and_a_high_risk_one_is_told_up_once(
    any_db: Database, clock: Clock
) -> None:
    handle = task_handler(SHIPPED, clock)
    event = assigned("t-plan", "planned")
    event.decided_risk = HIGH
    event.follow_up.CopyFrom(
        events_pb2.FollowUpPlan(
            plan_id="urgent", measure_days=14, test_days=[7, 1], check_in_times=["20:00", "08:00"],
            verify_within_hours=2, verify_by=to_timestamp(clock() + timedelta(hours=2)),
            measure_ends_at=to_timestamp(clock() + timedelta(days=14)),
        )
    )  # fmt: skip
    unreadable = assigned("t-bad-plan", "bad")
    unreadable.follow_up.check_in_times.append("8点")
    async with any_db.session() as session:
        await handle(envelope("p1", event), session)
        await handle(envelope("p2", event), session)  # a replay in the same batch
        await handle(envelope("p3", unreadable), session)
    async with any_db.session() as session:
        task = await storage.get_task(session, "t-plan")
        timers = await storage.timers_of(session, "t-plan")
        bad = await storage.get_task(session, "t-bad-plan")
    assert task is not None and task.follow_up is not None
    plan = FollowUp.decode(task.follow_up)
    assert plan is not None and plan.test_days == (1, 7)
    assert plan.check_in_times == (time(8), time(20))
    assert plan.verify_by == clock() + timedelta(hours=2)
    assert [(t.kind, t.next_at) for t in timers] == [("high_risk", clock())]
    # A plan that cannot be read does not cost the task.
    assert bad is not None and bad.follow_up is None
