"""A later report raising a task's risk: the tasks consumer on a real database, then the deadline
watcher's passes on the real broker with an injectable clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.settings import Settings
from services.escalation import storage
from services.escalation.consumers import task_handler
from services.escalation.deadlines import fire_due
from services.escalation.domain import HIGH_RISK_REASON, Action, TaskState
from services.escalation.flows import Change, TaskNotFound, change_task
from services.escalation.policy import load_policy
from tests.escalation.conftest import START, Clock, new_task, static_chain
from tests.escalation.records import published

SHIPPED = load_policy(
    Path(__file__).parents[2] / "services/escalation/deadlines.yaml", timedelta(minutes=30)
)
MEDIUM, HIGH = common_pb2.RISK_LEVEL_MEDIUM, common_pb2.RISK_LEVEL_HIGH
CADRE = common_pb2.CHAIN_LEVEL_CADRE
LIAISON = common_pb2.CHAIN_LEVEL_LIAISON
COMMUNITY = common_pb2.CHAIN_LEVEL_COMMUNITY
TOWNSHIP = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
COUNTY = common_pb2.CHAIN_LEVEL_COUNTY_OFFICE
OVERDUE = "包户干部未在时限内确认接收"


def assigned(task_id: str, risk: int) -> events_pb2.TaskEvent:
    """A task as assignment publishes it, to the household's cadre."""
    return events_pb2.TaskEvent(
        task_id=task_id,
        kind=events_pb2.TASK_EVENT_KIND_ASSIGNED,
        report_id=f"r-{task_id}",
        household_id="household-1",
        grid_id="grid-1",
        assignee=common_pb2.Responsible(level=CADRE, group_id=f"group-{CADRE}"),
        origin_risk=risk,  # type: ignore[arg-type]
        summary="王* **************1234 自北京返回",
        decided_risk=risk,  # type: ignore[arg-type]
        measure_id="home_monitoring_7d",
        measure_name="7天居家健康监测",
    )


def raised(task_id: str, risk: int = HIGH) -> events_pb2.TaskEvent:
    """Assignment's word that a later report of the person decided `risk`."""
    return events_pb2.TaskEvent(
        task_id=task_id,
        kind=events_pb2.TASK_EVENT_KIND_RISK_RAISED,
        report_id=f"r-{task_id}",
        decided_risk=risk,  # type: ignore[arg-type]
        measure_id="home_quarantine_14d",
        measure_name="14天居家隔离",
        raised_by_report_id="r-later",
        actor="assignment",
    )


class Escalation:
    """The tasks consumer's handler and the deadline watcher's pass, on one database."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.handle = task_handler(SHIPPED, clock)

    async def consume(self, event: events_pb2.TaskEvent) -> None:
        """Hand one tasks.v1 event to the handler, as the consumer does."""
        async with self.db.session() as session:
            await self.handle(Envelope(f"{event.task_id}-{event.kind}", "k", event), session)

    async def fire_at(self, minutes: float) -> list[str]:
        """One watcher pass at `minutes` after START."""
        self.clock.moment = START + timedelta(minutes=minutes)
        return await fire_due(self.db, static_chain, SHIPPED, self.clock())

    async def task(self, task_id: str) -> storage.Task:
        async with self.db.session() as session:
            found = await storage.get_task(session, task_id)
        assert found is not None
        return found

    async def escalations(self, task_id: str) -> list[tuple[int, str]]:
        async with self.db.session() as session:
            return [(e.level, e.reason) for e in await storage.escalations_of(session, task_id)]

    async def trail(self, task_id: str) -> list[storage.TaskChange]:
        async with self.db.session() as session:
            return list(await storage.changes_of(session, task_id))


@pytest.fixture
def escalation(db: Database, clock: Clock) -> Escalation:
    return Escalation(db, clock)


async def test_a_medium_task_raised_to_high_goes_up_at_once_then_by_the_tighter_plan(
    escalation: Escalation, settings: Settings, outbox: Outbox
) -> None:
    await escalation.consume(assigned("t-raised", MEDIUM))
    assert await escalation.fire_at(100) == []

    escalation.clock.moment = START + timedelta(minutes=110)
    await escalation.consume(raised("t-raised"))

    task = await escalation.task("t-raised")
    assert (task.state, task.origin_risk, task.measure_id, task.measure_name) == (
        TaskState.ASSIGNED, HIGH, "home_quarantine_14d", "14天居家隔离"
    )  # fmt: skip
    assert task.deadline_at == START + timedelta(minutes=110)
    [change] = await escalation.trail("t-raised")
    assert (change.action, change.from_state, change.to_state, change.actor, change.channel) == (
        "raise_risk", "assigned", "assigned", "assignment", "system"
    )  # fmt: skip
    assert "报告r-later显示高风险" in change.note
    assert change.note.endswith("风险由中升为高，措施改为14天居家隔离，时限按高风险重排")

    fired = [len(await escalation.fire_at(m)) for m in (110, 110, 119, 120, 140, 230, 350, 9999)]
    assert fired == [1, 0, 0, 1, 2, 1, 1, 0]
    assert await escalation.escalations("t-raised") == [
        (COMMUNITY, HIGH_RISK_REASON),  # at once, as for a new high-risk task
        (LIAISON, OVERDUE),  # the medium plan's own deadline at 120 is kept
        (LIAISON, OVERDUE),
        (COMMUNITY, OVERDUE),
        (TOWNSHIP, OVERDUE),
        (COUNTY, OVERDUE),
    ]
    notices = [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == "t-raised"
    ]  # fmt: skip
    at_once = [n for n in notices if n.title == HIGH_RISK_REASON]
    assert [n.recipient.level for n in at_once] == [COMMUNITY]
    assert len({n.notification_id for n in notices}) == len(notices) == 6


async def test_an_acknowledged_task_goes_up_at_once_and_keeps_no_deadline(
    escalation: Escalation, db: Database, clock: Clock
) -> None:
    await escalation.consume(assigned("t-taken", MEDIUM))
    clock.moment = START + timedelta(minutes=10)
    acknowledge = Change(Action.ACKNOWLEDGE, "cadre", "page")
    await change_task(db, SHIPPED, "t-taken", acknowledge, clock)

    clock.moment = START + timedelta(minutes=50)
    await escalation.consume(raised("t-taken"))

    assert [len(await escalation.fire_at(m)) for m in (50, 51, 9999)] == [1, 0, 0]
    assert await escalation.escalations("t-taken") == [(COMMUNITY, HIGH_RISK_REASON)]
    task = await escalation.task("t-taken")
    assert (task.state, task.origin_risk, task.deadline_at) == (TaskState.ACKNOWLEDGED, HIGH, None)
    trail = await escalation.trail("t-taken")
    assert [(c.action, c.to_state) for c in trail] == [
        ("acknowledge", "acknowledged"),
        ("raise_risk", "acknowledged"),
    ]
    assert trail[1].note.endswith("风险由中升为高，措施改为14天居家隔离")  # no deadline to re-plan

    # A new holder starts the high-risk plan afresh from the reassignment.
    clock.moment = START + timedelta(minutes=60)
    reassign = Change(
        Action.REASSIGN,
        "community",
        "page",
        assignee=common_pb2.Responsible(level=LIAISON, group_id=f"group-{LIAISON}"),
    )
    task, _ = await change_task(db, SHIPPED, "t-taken", reassign, clock)
    assert (task.plan, task.step, task.deadline_at) == (None, 0, clock.moment)


async def test_a_closed_task_is_not_reopened_and_the_raise_is_only_noted(
    escalation: Escalation, db: Database
) -> None:
    task = new_task(SHIPPED, START, task_id="t-closed")
    task.state, task.deadline_at = TaskState.CLOSED, None
    async with db.session() as session:
        session.add(task)

    await escalation.consume(raised("t-closed"))

    after = await escalation.task("t-closed")
    assert (after.state, after.origin_risk, after.measure_id, after.deadline_at) == (
        TaskState.CLOSED, MEDIUM, "", None
    )  # fmt: skip
    [change] = await escalation.trail("t-closed")
    assert (change.action, change.from_state, change.to_state) == ("raise_risk", "closed", "closed")
    assert change.note.endswith("任务已办结，不重新打开")
    assert await escalation.fire_at(9999) == []


async def test_a_risk_not_above_the_tasks_changes_nothing_but_is_noted(
    escalation: Escalation,
) -> None:
    await escalation.consume(assigned("t-high", HIGH))
    before = await escalation.task("t-high")

    await escalation.consume(raised("t-high", HIGH))

    after = await escalation.task("t-high")
    assert (after.plan, after.deadline_at, after.measure_id) == (
        None, before.deadline_at, "home_monitoring_7d"
    )  # fmt: skip
    [change] = await escalation.trail("t-high")
    assert change.note.endswith("不高于当前的高风险，任务不变")


async def test_a_raise_of_an_unknown_task_or_without_a_risk_is_refused(
    escalation: Escalation,
) -> None:
    with pytest.raises(TaskNotFound):
        await escalation.consume(raised("t-never-assigned"))
    await escalation.consume(assigned("t-known", MEDIUM))
    with pytest.raises(ValueError, match="carries no decided_risk"):
        await escalation.consume(raised("t-known", common_pb2.RISK_LEVEL_UNSPECIFIED))


async def test_a_task_is_planned_by_the_risk_assignment_decided_not_the_one_reported(
    escalation: Escalation,
) -> None:
    event = assigned("t-decided", MEDIUM)
    event.decided_risk = HIGH  # the risk-area list put the reported origin among high-risk areas
    await escalation.consume(event)

    task = await escalation.task("t-decided")
    assert (task.origin_risk, task.deadline_at) == (HIGH, START)
    assert len(await escalation.fire_at(0)) == 1
    assert await escalation.escalations("t-decided") == [(COMMUNITY, HIGH_RISK_REASON)]
