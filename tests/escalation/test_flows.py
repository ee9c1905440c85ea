"""Changes to tasks on a real SQLite database and the real broker: audit trail and events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gridline.bus import topics
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.settings import Settings
from services.escalation import storage
from services.escalation.domain import (
    Action,
    Measure,
    MeasureRequired,
    TestResult,
    TransitionRefused,
)
from services.escalation.flows import Change, TaskNotFound, change_task
from services.escalation.measures import TimerKind
from services.escalation.policy import every_level_after
from tests.escalation.conftest import Clock, new_task
from tests.escalation.records import published

POLICY = every_level_after(timedelta(minutes=30))


async def stored(db: Database, task: storage.Task) -> str:
    async with db.session() as session:
        session.add(task)
    return task.task_id


async def test_a_task_goes_the_whole_way_and_every_change_is_audited(
    db: Database, outbox: Outbox, settings: Settings, clock: Clock
) -> None:
    task_id = await stored(db, new_task(POLICY, clock()))
    steps = [
        Change(Action.ACKNOWLEDGE, actor="cadre-zhang", channel="page"),
        Change(Action.RECORD_VISIT, actor="cadre-zhang", channel="http", note="已入户"),
        Change(Action.START_MEASURE, "cadre-zhang", channel="grpc", measure=Measure.MONITORING),
        Change(Action.END_MEASURE, actor="community-li", channel="http"),
    ]  # fmt: skip
    states = []
    for change in steps:
        clock.advance(timedelta(minutes=5))
        task, _ = await change_task(db, POLICY, task_id, change, clock)
        states.append(task.state)
    assert states == ["acknowledged", "visited", "under_control", "closed"]
    assert task.measure == "monitoring"
    assert task.deadline_at is None

    async with db.session() as session:
        changes = await storage.changes_of(session, task_id)
    trail = [(c.version, c.action, c.from_state, c.to_state, c.actor, c.channel) for c in changes]
    assert trail == [
        (1, "acknowledge", "assigned", "acknowledged", "cadre-zhang", "page"),
        (2, "record_visit", "acknowledged", "visited", "cadre-zhang", "http"),
        (3, "start_measure", "visited", "under_control", "cadre-zhang", "grpc"),
        (4, "end_measure", "under_control", "closed", "community-li", "http"),
    ]  # fmt: skip
    assert changes[1].note == "已入户"
    assert [c.changed_at for c in changes] == [
        clock.moment - timedelta(minutes=5 * n) for n in (3, 2, 1, 0)
    ]

    events = [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.TASKS, after=outbox)
        if isinstance(e.message, events_pb2.TaskEvent) and e.message.task_id == task_id
    ]  # fmt: skip
    assert [e.kind for e in events] == [
        events_pb2.TASK_EVENT_KIND_ACKNOWLEDGED,
        events_pb2.TASK_EVENT_KIND_VISITED,
        events_pb2.TASK_EVENT_KIND_MEASURE_STARTED,
        events_pb2.TASK_EVENT_KIND_COMPLETED,
    ]
    assert [e.actor for e in events] == ["cadre-zhang"] * 3 + ["community-li"]


async def test_a_refused_change_names_the_state_and_leaves_no_trace(
    db: Database, clock: Clock
) -> None:
    task_id = await stored(db, new_task(POLICY, clock()))
    with pytest.raises(TransitionRefused, match="cannot record_visit a task that is assigned"):
        await change_task(db, POLICY, task_id, Change(Action.RECORD_VISIT, "x", "http"), clock)
    async with db.session() as session:
        task = await storage.get_task(session, task_id)
        assert task is not None and task.state == "assigned" and task.version == 0
        assert list(await storage.changes_of(session, task_id)) == []


async def test_starting_a_measure_needs_its_kind(db: Database, clock: Clock) -> None:
    task_id = await stored(db, new_task(POLICY, clock()))
    for action in (Action.ACKNOWLEDGE, Action.RECORD_VISIT):
        await change_task(db, POLICY, task_id, Change(action, "c", "http"), clock)
    with pytest.raises(MeasureRequired, match="quarantine or monitoring"):
        await change_task(db, POLICY, task_id, Change(Action.START_MEASURE, "c", "http"), clock)
    async with db.session() as session:
        task = await storage.get_task(session, task_id)
        assert task is not None and task.state == "visited"


async def test_an_unknown_task_is_not_found(db: Database) -> None:
    with pytest.raises(TaskNotFound):
        await change_task(db, POLICY, "nope", Change(Action.ACKNOWLEDGE, "c", "http"))


async def test_acknowledging_cancels_the_deadline(db: Database, clock: Clock) -> None:
    task_id = await stored(db, new_task(POLICY, clock()))
    task, _ = await change_task(db, POLICY, task_id, Change(Action.ACKNOWLEDGE, "c", "http"), clock)
    assert task.deadline_at is None and task.acknowledged_at == clock()


async def test_triage_then_placement_restarts_the_deadlines_and_tells_the_new_assignee(
    db: Database, outbox: Outbox, settings: Settings, clock: Clock
) -> None:
    task_id = await stored(db, new_task(POLICY, clock()))
    clock.advance(timedelta(minutes=10))
    task, _ = await change_task(
        db, POLICY, task_id,
        Change(Action.SEND_TO_TRIAGE, "cadre-zhang", "page", note="不是本网格住户"), clock,
    )  # fmt: skip
    assert task.state == "triage"
    assert task.deadline_at == clock() + timedelta(minutes=30)

    clock.advance(timedelta(minutes=10))
    new_cadre = common_pb2.Responsible(level=common_pb2.CHAIN_LEVEL_CADRE, group_id="group-other")
    task, _ = await change_task(
        db, POLICY, task_id,
        Change(Action.REASSIGN, "community-li", "http", assignee=new_cadre, node_id="household-9"),
        clock,
    )  # fmt: skip
    assert (task.state, task.assignee_group_id, task.node_id) == (
        "assigned", "group-other", "household-9",
    )  # fmt: skip
    assert task.assigned_at == clock() and task.step == 0
    assert task.deadline_at == clock() + timedelta(minutes=30)

    notices = [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == task_id
    ]  # fmt: skip
    assert [(n.kind, n.recipient.group_id) for n in notices] == [
        (events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED, "group-other")
    ]
    async with db.session() as session:
        trail = [(c.action, c.actor) for c in await storage.changes_of(session, task_id)]
    assert trail == [("send_to_triage", "cadre-zhang"), ("reassign", "community-li")]


async def test_a_triage_task_that_was_no_arrival_is_closed(db: Database, clock: Clock) -> None:
    task_id = await stored(db, new_task(POLICY, clock(), triage=True))
    with pytest.raises(TransitionRefused, match="that is triage"):
        await change_task(db, POLICY, task_id, Change(Action.ACKNOWLEDGE, "c", "http"))
    task, _ = await change_task(
        db, POLICY, task_id, Change(Action.CLOSE, "community-li", "http"), clock
    )
    assert task.state == "closed" and task.deadline_at is None


async def test_a_positive_test_before_any_measure_goes_up_at_once_and_to_transfer(
    db: Database, clock: Clock
) -> None:
    task_id = await stored(db, new_task(POLICY, clock()))
    await change_task(db, POLICY, task_id, Change(Action.ACKNOWLEDGE, "cadre-zhang", "http"), clock)
    positive = Change(
        Action.RECORD_TEST, "cadre-zhang", "http", result=TestResult.POSITIVE, source_id="s-1"
    )
    task, _ = await change_task(db, POLICY, task_id, positive, clock)
    assert task.state == "transfer" and task.measure is None
    async with db.session() as session:
        timers = await storage.pending_timers(session, task_id)
        [record] = await storage.test_records_of(session, task_id)
    # The health centre and the county office are told at once: the timer falls due now.
    assert [(t.kind, t.next_at) for t in timers] == [(TimerKind.POSITIVE, clock())]
    assert (record.result, record.test_day) == ("positive", 0)
