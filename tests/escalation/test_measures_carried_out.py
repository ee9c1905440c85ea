"""Measures carried out to their end on a compressed clock, on the real broker and database.

A high-risk and a low-risk arrival are published on tasks.v1 with their follow-up plans (as
assignment's policy makes them) and stored by escalation's consumer; the deadline watcher then
passes every 30 minutes of a clock the test moves by hand, over two weeks, while the cadre and
the residents act at their times. Every reminder, check-in, test, escalation and the end notice
is read back from the broker and must have been sent once, at its time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.ids import new_id
from gridline.settings import Settings
from gridline.timestamps import SHANGHAI, from_timestamp, to_timestamp
from services.escalation import check_in_flows, measure_flows, measures, storage
from services.escalation.check_ins import CheckInConfig, CheckInRules, HealthCentre
from services.escalation.consumers import GROUP, accepts, task_handler
from services.escalation.deadlines import DeadlineWatcher
from services.escalation.domain import HIGH_RISK_REASON, Action, Measure, TestResult
from services.escalation.flows import Change, change_task
from services.escalation.policy import load_policy
from services.escalation.retries import RETRY_MIN
from tests.assignment.serving import directory_server
from tests.assignment.support import LINKS
from tests.escalation.conftest import Clock, new_task, static_chain
from tests.escalation.local import HOUSEHOLD, county, escalation_db
from tests.escalation.records import published
from tests.helpers import eventually

SHIPPED = load_policy(
    Path(__file__).parents[2] / "services/escalation/deadlines.yaml", timedelta(minutes=30)
)
LIAISON = common_pb2.CHAIN_LEVEL_LIAISON
COMMUNITY = common_pb2.CHAIN_LEVEL_COMMUNITY
TOWNSHIP = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
COUNTY = common_pb2.CHAIN_LEVEL_COUNTY_OFFICE
CENTRE = "hc-1"
RULES = CheckInRules(
    CheckInConfig(health_centres={f"group-{TOWNSHIP}": HealthCentre(group_id=CENTRE)})
)
K = events_pb2.NotificationKind
STEP = timedelta(minutes=30)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Beijing time, 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def assigned(
    task_id: str, risk: common_pb2.RiskLevel, arrived: datetime, plan: events_pb2.FollowUpPlan
) -> events_pb2.TaskEvent:
    """An ASSIGNED event as assignment publishes it, with its policy's follow-up plan."""
    return events_pb2.TaskEvent(
        task_id=task_id, kind=events_pb2.TASK_EVENT_KIND_ASSIGNED, report_id=f"r-{task_id}",
        household_id="household-1", grid_id="grid-1", community_id="cm-1", township_id="t-1",
        assignee=common_pb2.Responsible(level=common_pb2.CHAIN_LEVEL_CADRE, group_id="group-1"),
        origin_risk=risk, decided_risk=risk,
        summary="王*（身份证**************1234）自外省来，住文化苑1号楼1单元101室",
        accepted_at=to_timestamp(arrived), occurred_at=to_timestamp(arrived), actor="assignment",
        follow_up=plan,
    )  # fmt: skip


def high_plan(arrived: datetime) -> events_pb2.FollowUpPlan:
    """The shipped policy's high risk: 14 days of home quarantine, tests on days 1, 4, 7 and
    14, check-ins every two hours from 08:00 to 20:00, verified within two hours."""
    return events_pb2.FollowUpPlan(
        plan_id="urgent", measure_days=14, test_days=[1, 4, 7, 14], verify_within_hours=2,
        home_visit=True, check_in_times=[f"{h:02d}:00" for h in range(8, 21, 2)],
        verify_by=to_timestamp(arrived + timedelta(hours=2)),
        measure_ends_at=to_timestamp(arrived + timedelta(days=14)),
    )  # fmt: skip


def low_plan(arrived: datetime) -> events_pb2.FollowUpPlan:
    """A low-risk arrival under seven days of home health monitoring (as a county's policy may
    set it at a peak): tests on days 1 and 7, check-ins at 08:00 and 20:00, verified in 12 h."""
    return events_pb2.FollowUpPlan(
        plan_id="monitor", measure_days=7, test_days=[1, 7], verify_within_hours=12,
        home_visit=True, check_in_times=["08:00", "20:00"],
        verify_by=to_timestamp(arrived + timedelta(hours=12)),
        measure_ends_at=to_timestamp(arrived + timedelta(days=7)),
    )  # fmt: skip


def check_ins(start: datetime, end: datetime, hours: list[int]) -> list[datetime]:
    """The check-in times strictly after `start`, up to `end`."""
    found, day = [], start.date()
    while day <= end.date():
        found += [datetime.combine(day, time(h), SHANGHAI) for h in hours]
        day += timedelta(days=1)
    return [m for m in found if start < m <= end]


async def test_a_high_and_a_low_risk_arrival_through_their_whole_measures(
    settings: Settings, producer: EventProducer, db: Database, outbox: Outbox
) -> None:
    clock = Clock(at(1, 20, 9))
    high, low = new_id(), new_id()
    high_arrived, low_arrived = at(1, 20, 9), at(1, 20, 10)
    runner = ConsumerRunner(
        settings=settings, topic=topics.TASKS, group=f"{GROUP}-{high}", db=db,
        handler=task_handler(SHIPPED, clock), accepts=accepts,
    )  # fmt: skip

    async def stored(task_id: str) -> bool:
        async with db.session() as session:
            return await storage.get_task(session, task_id) is not None

    async def act(task_id: str, action: Action, **given: object) -> None:
        change = Change(action, "包户干部张伟（cadre-1）", "page", **given)  # type: ignore[arg-type]
        await change_task(db, SHIPPED, task_id, change, clock, RULES, links=LINKS)

    async def check_in(task_id: str) -> None:
        await check_in_flows.take(
            db, RULES, static_chain, task_id=task_id, temperature=36.5, symptoms=[],
            channel="sms", source_id=f"sms-{clock().isoformat()}", moment=clock(),
        )  # fmt: skip

    async def test_result(task_id: str, result: TestResult) -> None:
        await act(task_id, Action.RECORD_TEST, result=result, source_id=clock().isoformat())

    # What the cadres and residents do, by the moment they do it (Beijing time).
    high_start, low_start = at(1, 20, 12), at(1, 20, 14)
    high_end = high_arrived + timedelta(days=14)
    missed = at(1, 22, 14)  # the one check-in the high-risk resident misses
    plan: dict[datetime, list[tuple[str, str, object]]] = {}

    def on(moment: datetime, task_id: str, what: str, detail: object = None) -> None:
        plan.setdefault(moment, []).append((task_id, what, detail))

    on(at(1, 20, 9, 10), high, "do", Action.ACKNOWLEDGE)
    on(at(1, 20, 10, 30), low, "do", Action.ACKNOWLEDGE)
    on(high_start, high, "do", Action.RECORD_VISIT)  # an hour after its verification deadline
    on(high_start, high, "start", Measure.QUARANTINE)
    on(low_start, low, "do", Action.RECORD_VISIT)  # in time
    on(low_start, low, "start", Measure.MONITORING)
    for moment in check_ins(high_start, high_end, list(range(8, 21, 2))):
        if moment != missed:
            on(moment, high, "check_in")
    # Low risk: checked in until its positive test moves it to transfer.
    for moment in check_ins(low_start, at(1, 26, 11), [8, 20]):
        on(moment, low, "check_in")
    on(at(1, 20, 13), high, "test", TestResult.NEGATIVE)  # day 1 (due at the start)
    on(at(1, 23, 18), high, "test", TestResult.NEGATIVE)  # day 4: late, after it went up
    on(at(1, 26, 10), high, "test", TestResult.NEGATIVE)  # day 7
    on(at(2, 2, 10), high, "test", TestResult.NEGATIVE)  # day 14
    on(at(1, 20, 15), low, "test", TestResult.NEGATIVE)  # day 1
    on(at(1, 26, 11), low, "test", TestResult.POSITIVE)  # day 7
    on(at(1, 26, 14), low, "do", Action.TO_ISOLATION)
    on(high_end, high, "do", Action.END_MEASURE)  # the measure ran out: ended, no request

    async with runner:
        high_event = assigned(
            high, common_pb2.RISK_LEVEL_HIGH, high_arrived, high_plan(high_arrived)
        )
        await producer.publish(topics.TASKS, Envelope(new_id(), "household-1", high_event))
        await eventually(lambda: stored(high))
        clock.moment = low_arrived
        low_event = assigned(low, common_pb2.RISK_LEVEL_LOW, low_arrived, low_plan(low_arrived))
        await producer.publish(topics.TASKS, Envelope(new_id(), "household-1", low_event))
        await eventually(lambda: stored(low))

    watcher = DeadlineWatcher(db, static_chain, SHIPPED, 1.0, clock, RULES, LINKS)
    moments = sorted({*plan, *(high_arrived + STEP * i for i in range(14 * 48 + 2))})
    for moment in moments:
        clock.moment = moment
        if moment == at(1, 27, 0):
            # A restart: a new watcher carries on from the rows where the old one left off.
            watcher = DeadlineWatcher(db, static_chain, SHIPPED, 1.0, clock, RULES, LINKS)
        for task_id, what, detail in plan.get(moment, []):
            if what == "do":
                await act(task_id, detail)  # type: ignore[arg-type]
            elif what == "start":
                await act(task_id, Action.START_MEASURE, measure=detail)
            elif what == "check_in":
                await check_in(task_id)
            else:
                await test_result(task_id, detail)  # type: ignore[arg-type]
        # What was done at this moment is seen by the pass at it, as by the next tick.
        if (moment - high_arrived) % STEP == timedelta(0):
            await watcher.run_pass()

    notices = [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id in (high, low)
    ]  # fmt: skip
    assert len({n.notification_id for n in notices}) == len(notices)  # each sent once

    def sent(task_id: str, kind: int, group: str | None = None) -> Counter[datetime]:
        """When notices of a kind went to a task's group (to any group without one)."""
        return Counter(
            _local(n.created_at)
            for n in notices
            if n.task_id == task_id and n.kind == kind
            and (group is None or n.recipient.group_id == group)
        )  # fmt: skip

    # High risk: reported to the township and county at once, a notice (no escalation).
    assert sent(high, K.NOTIFICATION_KIND_REPORTED_UP) == {high_arrived: 2}
    assert sent(low, K.NOTIFICATION_KIND_REPORTED_UP) == {}
    # A reminder to the cadre and to the resident 30 minutes before each check-in and test.
    high_check_ins = check_ins(high_start, high_end, list(range(8, 21, 2)))
    assert len(high_check_ins) == 96
    test_days = [high_start, at(1, 23, 9), at(1, 26, 9), at(2, 2, 9)]
    expected = Counter(max(m - STEP, high_start) for m in [*high_check_ins, *test_days])
    assert sent(high, K.NOTIFICATION_KIND_REMINDER) == expected
    assert sent(high, K.NOTIFICATION_KIND_RESIDENT_REMINDER) == expected + Counter(
        {at(2, 2, 9): 1}  # and the resident is told the day before the end
    )
    # The low-risk measure's reminders stop with its positive test (day 7, 11:00).
    low_check_ins = check_ins(low_start, at(1, 26, 11), [8, 20])
    low_expected = Counter([*(m - STEP for m in low_check_ins), low_start, at(1, 26, 8, 30)])
    assert sent(low, K.NOTIFICATION_KIND_REMINDER) == low_expected
    # The day before each measure ends.
    assert sent(high, K.NOTIFICATION_KIND_MEASURE_ENDING) == {at(2, 2, 9): 1}
    assert sent(low, K.NOTIFICATION_KIND_MEASURE_ENDING) == {at(1, 26, 10): 1}

    # The missed check-in went to the cadre after the grace, then to the liaison; the missed
    # verification to the liaison and community; the day-4 test without a result to the
    # community and the health centre; the positive test at once to the health centre and the
    # county office. Nothing else went up.
    async with db.session() as session:
        high_up = [(e.level, e.group_id, e.reason, _local_dt(e.raised_at))
                   for e in await storage.escalations_of(session, high)]  # fmt: skip
        low_up = [(e.level, e.group_id, e.reason, _local_dt(e.raised_at))
                  for e in await storage.escalations_of(session, low)]  # fmt: skip
        high_task = await storage.get_task(session, high)
        low_task = await storage.get_task(session, low)
        trail = [c.action for c in await storage.changes_of(session, low)]
    assert sorted(high_up) == sorted([
        (COMMUNITY, f"group-{COMMUNITY}", HIGH_RISK_REASON, high_arrived),
        (LIAISON, f"group-{LIAISON}", "入户核查逾期未完成", at(1, 20, 11)),
        (COMMUNITY, f"group-{COMMUNITY}", "入户核查逾期未完成", at(1, 20, 11)),
        (COMMUNITY, f"group-{COMMUNITY}", "管控第4天核酸检测未完成", at(1, 23, 17)),
        (TOWNSHIP, CENTRE, "管控第4天核酸检测未完成", at(1, 23, 17)),
    ])  # fmt: skip
    assert sorted(low_up) == sorted([
        (TOWNSHIP, CENTRE, "核酸检测阳性，立即转运", at(1, 26, 11)),
        (COUNTY, f"group-{COUNTY}", "核酸检测阳性，立即转运", at(1, 26, 11)),
    ])  # fmt: skip
    missed_notices = [
        (n.recipient.group_id, _local(n.created_at)) for n in notices
        if n.task_id == high and "健康打卡未按时提交" in n.title
    ]  # fmt: skip
    assert sorted(missed_notices) == [
        ("group-1", at(1, 22, 16)),
        (f"group-{LIAISON}", at(1, 22, 18)),
    ]
    (to_centre,) = [n for n in notices if n.task_id == low and n.recipient.group_id == CENTRE]
    assert "请卫生院立即安排闭环转运至定点医院或集中隔离点" in to_centre.body
    assert high_task is not None and high_task.state == "closed"
    assert low_task is not None and low_task.state == "isolation"
    assert trail[-3:] == ["record_test", "record_test", "to_isolation"]
    # The case's end is published as a completion naming how it ended.
    events = [
        (e.message.kind, e.message.state)
        for e in await published(settings.kafka_bootstrap, topics.TASKS, after=outbox)
        if isinstance(e.message, events_pb2.TaskEvent) and e.message.task_id == low
    ]  # fmt: skip
    assert events[-2:] == [
        (events_pb2.TASK_EVENT_KIND_OUTCOME_RECORDED, "transfer"),
        (events_pb2.TASK_EVENT_KIND_COMPLETED, "isolation"),
    ]


def _local(stamp: Timestamp) -> datetime:
    return from_timestamp(stamp).astimezone(SHANGHAI)


def _local_dt(moment: datetime) -> datetime:
    return moment.astimezone(SHANGHAI)


async def test_each_timer_fires_once_when_two_replicas_pass_together(
    settings: Settings, postgres_database: str
) -> None:
    """Two passes at once on PostgreSQL (two replicas; SQLite has one writer, one watcher):
    every due timer is fired by one of them only."""
    on_postgres = settings.model_copy(update={"database_url": postgres_database})
    async with escalation_db(on_postgres) as db:
        await _fire_together(db)


async def _fire_together(db: Database) -> None:
    clock = Clock(at(1, 20, 9))
    ids = [new_id() for _ in range(3)]
    async with db.session() as session:
        for task_id in ids:
            session.add(_stored_task(task_id, clock()))
        await storage.add_timers(
            session, [measure_flows.high_risk_timer(task_id, clock()) for task_id in ids]
        )
    first, second = await asyncio.gather(
        measure_flows.fire_due(db, static_chain, RULES, clock()),
        measure_flows.fire_due(db, static_chain, RULES, clock()),
    )
    assert len(first) + len(second) == 2 * len(ids)  # township and county, once per task
    assert not set(first) & set(second)
    assert await measure_flows.fire_due(db, static_chain, RULES, clock() + STEP) == []


def _stored_task(task_id: str, moment: datetime) -> storage.Task:
    return new_task(SHIPPED, moment, origin_risk=common_pb2.RISK_LEVEL_HIGH, task_id=task_id)


async def test_a_timer_whose_node_is_unknown_is_set_aside_and_the_others_fire(
    tmp_path: Path,
) -> None:
    """The real Directory over loopback: a task placed at a node it lacks is tried again later
    (as a deadline is); the task beside it is told up all the same."""
    settings = Settings(data_dir=tmp_path)
    clock = Clock(at(1, 20, 9))
    async with (
        directory_server(county(), Settings(data_dir=tmp_path / "assignment")) as target,
        DirectoryClient(target, timeout=2.0, attempts=1) as directory,
        escalation_db(settings) as db,
    ):
        tasks = [_stored_task(new_id(), clock()) for _ in range(2)]
        tasks[0].node_id, tasks[1].node_id = "h-gone", HOUSEHOLD
        async with db.session() as session:
            session.add_all(tasks)
            await storage.add_timers(
                session, [measure_flows.high_risk_timer(t.task_id, clock()) for t in tasks]
            )
        sent = await measure_flows.fire_due(db, directory.chain, RULES, clock())
        async with db.session() as session:
            gone = await storage.timers_of(session, tasks[0].task_id)
            told = await storage.timers_of(session, tasks[1].task_id)
    assert len(sent) == 2  # the township and county offices of the known household
    assert told[0].fired_at == clock() and told[0].next_at is None
    assert gone[0].fired_at is None and gone[0].next_at == clock() + RETRY_MIN


async def test_a_test_not_taken_goes_up_at_once_and_a_handed_over_task_owes_no_old_visit(
    db: Database,
) -> None:
    clock = Clock(at(1, 20, 9))
    plan = measures.FollowUp.from_event(high_plan(clock()))
    tested, handed = (new_task(SHIPPED, clock(), follow_up=plan) for _ in range(2))
    async with db.session() as session:
        session.add_all([tested, handed])

    async def act(task_id: str, action: Action, **given: object) -> None:
        change = Change(action, "社区李敏（cm-1）", "http", **given)  # type: ignore[arg-type]
        await change_task(db, SHIPPED, task_id, change, clock, RULES, links=LINKS)

    for action in (Action.ACKNOWLEDGE, Action.RECORD_VISIT):
        await act(tested.task_id, action)
    await act(tested.task_id, Action.START_MEASURE, measure=Measure.QUARANTINE)
    await act(tested.task_id, Action.RECORD_TEST, result=TestResult.NOT_TAKEN, source_id="s1")
    await act(handed.task_id, Action.ACKNOWLEDGE)
    clock.advance(timedelta(hours=1))
    assignee = common_pb2.Responsible(level=common_pb2.CHAIN_LEVEL_CADRE, group_id="group-9")
    await act(handed.task_id, Action.REASSIGN, assignee=assignee)

    await measure_flows.fire_due(db, static_chain, RULES, clock() + timedelta(hours=3))
    async with db.session() as session:
        up = [(e.group_id, e.reason) for e in await storage.escalations_of(session, tested.task_id)]
        handed_up = await storage.escalations_of(session, handed.task_id)
    assert sorted(up) == [
        (f"group-{COMMUNITY}", "管控第1天核酸检测未完成"),
        (CENTRE, "管控第1天核酸检测未完成"),
    ]
    # The first holder's verification deadline went with the hand-over.
    assert [e.reason for e in handed_up] == []
