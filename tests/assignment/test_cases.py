"""One case per person, without Kafka: the report handler on a real database."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf.message import Message
from prometheus_client import REGISTRY
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import Handler
from gridline.bus.envelope import Envelope, decode
from gridline.bus.outbox import OUTBOX, Outbox
from gridline.bus.producer import RawRecord
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.settings import Settings
from services.assignment import demo_county, storage
from services.assignment.assignee import CadreLoad
from services.assignment.cases import Case, enrichment
from services.assignment.consumers import (
    prepare_reports,
    report_handler,
    task_handler,
    tasks_accepts,
)
from services.assignment.directory import Directory
from services.assignment.following import Current
from tests.assignment.support import LINKS, POLICY, decision

ADDRESS = "皋兰县石洞镇三川社区文化苑2号楼2单元201室"
HOUSEHOLD = "cm03-g02-b02-u2-201"
OTHER_ADDRESS = "皋兰县石洞镇三川社区文化苑2号楼2单元202室"
UNPLACEABLE = "皋兰县石洞镇城北社区新建平房12号"
LOW, MEDIUM, HIGH = (
    common_pb2.RISK_LEVEL_LOW,
    common_pb2.RISK_LEVEL_MEDIUM,
    common_pb2.RISK_LEVEL_HIGH,
)


class Recorder:
    """Stands in for the broker behind the outbox: keeps what the handler publishes, by topic."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Message]] = []
        self.envelopes: list[tuple[str, Envelope]] = []

    async def send_many(self, records: Sequence[RawRecord]) -> list[bool]:
        """Keep records sent together, in order; all confirmed."""
        for topic, key, value, headers in records:
            envelope = decode(key, value, headers)
            self.published.append((topic, envelope.message))
            self.envelopes.append((topic, envelope))
        return [True] * len(records)

    def of(self, topic: str, report_id: str) -> list[Message]:
        """What was published on `topic` about one report."""
        return [m for t, m in self.published if t == topic and m.report_id == report_id]

    def raises(self) -> list[Envelope]:
        """The RISK_RAISED task events published so far, as sent."""
        return [
            e for t, e in self.envelopes
            if t == topics.TASKS and e.message.kind == events_pb2.TASK_EVENT_KIND_RISK_RAISED
        ]  # fmt: skip


@pytest.fixture(scope="module")
def directory() -> Directory:
    county = demo_county.generate()
    return Directory(county.nodes, county.people, county.groups, county.micro_grids)


def accepted(
    report_id: str,
    *,
    case: str = "",
    source: int = common_pb2.REPORT_SOURCE_SELF_REPORT,
    risk: int = LOW,
    address: str = ADDRESS,
    person: str,
) -> events_pb2.ReportAccepted:
    """An accepted report of `person` (their key), as intake publishes it."""
    report = events_pb2.ReportAccepted(
        report_id=report_id,
        person_key=person,
        source=source,  # type: ignore[arg-type]
        name_masked="张*",
        id_number_masked="**************0011",
        phone_masked="138****0000",
        origin_region_code="310115",
        origin_name="上海市浦东新区",
        origin_risk=risk,  # type: ignore[arg-type]
        address=address,
        case_report_id=case,
    )
    report.accepted_at.FromDatetime(datetime(2022, 1, 20, 2, 5, tzinfo=UTC))
    return report


class _Crash(Exception):
    """The process died before the consumer's transaction committed."""


# Marks the transaction that is to crash (the outbox's sweep commits transactions of its own).
_CRASHING = "test.crashing"


class Service:
    """Assignment's two handlers on one database, its outbox and one in-memory load."""

    def __init__(self, directory: Directory, db: Database, outbox: Outbox, out: Recorder) -> None:
        self.db = db
        self.outbox = outbox
        self.load = CadreLoad()
        self.out = out
        self.reports: Handler = report_handler(Current(directory), LINKS, self.load, POLICY)
        self.tasks: Handler = task_handler(self.load)
        # Runs after the outbox has written the transaction's rows, just before the commit.
        db.before_commit.append(self._crash_before_commit)

    async def _crash_before_commit(self, session: AsyncSession) -> None:
        if not session.info.get(_CRASHING):
            return
        # What the transaction would have published: its rows, as the relay would send them.
        rows = await session.exec(
            select(OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.value, OUTBOX.c.headers)
            .where(OUTBOX.c.published_at.is_(None))
            .order_by(OUTBOX.c.id)
        )
        await self.out.send_many(
            [
                (topic, key, value, [(k, v.encode()) for k, v in json.loads(headers).items()])
                for topic, key, value, headers in rows.all()
            ]
        )
        raise _Crash

    async def report(
        self,
        report_id: str,
        *,
        case: str = "",
        source: int = common_pb2.REPORT_SOURCE_SELF_REPORT,
        risk: int = LOW,
        address: str = ADDRESS,
        crash: bool = False,
    ) -> events_pb2.ReportAccepted:
        """Hand one report of the same person to the handler, as the consumer does, and wait
        for the outbox to publish what it staged (`crash`: the process dies after the handler,
        its outbox rows written, before the transaction commits; what those rows hold is kept
        as published, to compare a replay with)."""
        report = accepted(
            report_id, case=case, source=source, risk=risk, address=address, person="k-person"
        )
        await self.batch([report], crash=crash)
        return report

    async def batch(
        self, reports: Sequence[events_pb2.ReportAccepted], *, crash: bool = False
    ) -> None:
        """Hand reports to the handler in one transaction, their open cases read first, as the
        consumer does with a batch, and wait for the outbox to publish what they staged
        (`crash`: as for `report`)."""
        with contextlib.suppress(_Crash):
            async with self.db.session() as session:
                session.info[_CRASHING] = crash
                await prepare_reports(
                    [Envelope(r.report_id, r.person_key, r) for r in reports], session
                )
                for report in reports:
                    await self.reports(
                        Envelope(report.report_id, report.person_key, report), session
                    )
        await self.outbox.drained()

    async def task_event(self, event: events_pb2.TaskEvent) -> None:
        """Hand one tasks.v1 event to the task handler."""
        async with self.db.session() as session:
            await self.tasks(Envelope(f"{event.task_id}-{event.kind}", "k", event), session)

    async def placement(self, report_id: str) -> storage.Placement:
        """The stored placement of a report."""
        async with self.db.session() as session:
            found = await storage.get_placement(session, report_id)
        assert found is not None, report_id
        return found

    async def open_counts(self) -> dict[str, int]:
        """Open cases per assignee, as stored."""
        async with self.db.session() as session:
            return await storage.open_counts(session)


@pytest.fixture
async def service(directory: Directory, tmp_path: Path) -> AsyncIterator[Service]:
    settings = Settings(data_dir=tmp_path)
    out = Recorder()
    async with (
        Database(settings, "assignment", storage.TABLES) as db,
        Outbox(db, out, settings) as outbox,  # type: ignore[arg-type]
    ):
        yield Service(directory, db, outbox, out)


def _merged(source: str) -> float:
    value = REGISTRY.get_sample_value(
        "gridline_assignment_reports_merged_total", {"source": source}
    )
    return value or 0.0


async def test_a_later_report_joins_the_open_case_and_its_holder_is_told_once(
    service: Service,
) -> None:
    merged_before = _merged("checkpoint_scan")
    await service.report("r-first")
    [task] = service.out.of(topics.TASKS, "r-first")
    assert isinstance(task, events_pb2.TaskEvent)

    await service.report(
        "r-later", case="r-first", source=common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN, risk=HIGH
    )

    assert service.out.of(topics.TASKS, "r-later") == []
    [notice] = service.out.of(topics.NOTIFICATIONS, "r-later")
    assert isinstance(notice, events_pb2.Notification)
    assert notice.kind == events_pb2.NOTIFICATION_KIND_CASE_ENRICHED
    assert notice.task_id == task.task_id
    assert notice.recipient.group_id == task.assignee.group_id
    assert notice.title == "同一人员再次被报告：风险更高"
    assert "卡口扫码于1月20日 10:05再次报告此人" in notice.body
    assert "按高风险地区来返人员管理（此前为低风险）" in notice.body
    assert "措施改为14天居家隔离" in notice.body
    assert "住址" not in notice.body  # the same household: nothing new about where

    later = await service.placement("r-later")
    assert (later.task_id, later.merged_into, later.node_id) == (task.task_id, "r-first", HOUSEHOLD)
    assert later.risk == HIGH
    assert await service.open_counts() == {task.assignee.person_id: 1}
    assert service.load.of(task.assignee.person_id) == 1
    assert _merged("checkpoint_scan") == merged_before + 1


async def test_a_higher_risk_tells_escalation_once_on_the_task_key(service: Service) -> None:
    await service.report("r-first", risk=MEDIUM)
    [(_, placed)] = [(t, e) for t, e in service.out.envelopes if t == topics.TASKS]
    task = placed.message
    assert isinstance(task, events_pb2.TaskEvent)

    for later, source in (
        ("r-later", common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN),
        ("r-again", common_pb2.REPORT_SOURCE_NEIGHBOUR),
    ):
        await service.report(later, case="r-first", source=source, risk=HIGH)

    [envelope] = service.out.raises()  # the third report is no higher than the second
    raised = envelope.message
    assert isinstance(raised, events_pb2.TaskEvent)
    assert envelope.key == placed.key  # the task's partition: escalation sees it after ASSIGNED
    assert (raised.task_id, raised.report_id, raised.raised_by_report_id) == (
        task.task_id, "r-first", "r-later"
    )  # fmt: skip
    assert (raised.decided_risk, raised.measure_id, raised.measure_name) == (
        HIGH, "home_quarantine_14d", "14天居家隔离"
    )  # fmt: skip
    assert raised.policy_version == task.policy_version
    assert (raised.household_id, raised.grid_id, raised.triage) == (HOUSEHOLD, task.grid_id, False)
    assert raised.assignee.group_id == task.assignee.group_id
    # Assignment's case now has the higher risk: the third report was compared with it.
    assert (await service.placement("r-later")).risk == HIGH
    async with service.db.session() as session:
        case = await storage.open_case(session, "r-first")
    assert case is not None and case.risk == HIGH


async def test_a_raise_replayed_after_a_crash_repeats_its_event_id(service: Service) -> None:
    await service.report("r-first", risk=LOW)
    await service.report("r-later", case="r-first", risk=MEDIUM, crash=True)
    await service.report("r-later", case="r-first", risk=MEDIUM)  # redelivered
    await service.report("r-last", case="r-first", risk=HIGH)

    ids = [e.event_id for e in service.out.raises()]
    assert len(ids) == 3 and ids[0] == ids[1] != ids[2]
    assert [e.message.decided_risk for e in service.out.raises()] == [MEDIUM, MEDIUM, HIGH]


async def test_a_first_report_arriving_after_a_later_one_joins_the_case_that_one_opened(
    service: Service,
) -> None:
    await service.report("r-later", case="r-first", address=UNPLACEABLE)
    [task] = service.out.of(topics.TASKS, "r-later")
    assert isinstance(task, events_pb2.TaskEvent) and task.triage

    await service.report("r-first", source=common_pb2.REPORT_SOURCE_HEALTH_CODE_FEED)

    assert service.out.of(topics.TASKS, "r-first") == []
    [notice] = service.out.of(topics.NOTIFICATIONS, "r-first")
    assert isinstance(notice, events_pb2.Notification)
    assert notice.title == "同一人员再次被报告"
    assert f"新报告的住址能对应到户：{ADDRESS}" in notice.body
    first = await service.placement("r-first")
    assert (first.task_id, first.merged_into) == (task.task_id, "r-later")


async def test_after_a_completed_case_a_report_opens_a_new_one_that_the_next_joins(
    service: Service,
) -> None:
    await service.report("r-1")
    await service.report("r-2", case="r-1", source=common_pb2.REPORT_SOURCE_NEIGHBOUR)
    first = await service.placement("r-1")
    await service.task_event(
        events_pb2.TaskEvent(task_id=first.task_id, kind=events_pb2.TASK_EVENT_KIND_COMPLETED)
    )
    assert (await service.placement("r-2")).completed_at is not None
    assert await service.open_counts() == {}
    assert service.load.of(first.assignee_id) == 0

    await service.report("r-3", case="r-1", source=common_pb2.REPORT_SOURCE_CADRE_VISIT)
    await service.report("r-4", case="r-1", source=common_pb2.REPORT_SOURCE_SELF_REPORT)

    [reopened] = service.out.of(topics.TASKS, "r-3")
    assert isinstance(reopened, events_pb2.TaskEvent) and reopened.task_id != first.task_id
    assert service.out.of(topics.TASKS, "r-4") == []
    assert (await service.placement("r-4")).merged_into == "r-3"
    assert await service.open_counts() == {first.assignee_id: 1}


async def test_the_notice_goes_to_the_group_holding_the_case_now(
    service: Service, directory: Directory
) -> None:
    await service.report("r-first")
    placed = await service.placement("r-first")
    liaison = directory.chain(HOUSEHOLD)[1]
    await service.task_event(
        events_pb2.TaskEvent(
            task_id=placed.task_id,
            kind=events_pb2.TASK_EVENT_KIND_REASSIGNED,
            assignee=common_pb2.Responsible(
                level=common_pb2.CHAIN_LEVEL_LIAISON, group_id=liaison.group.id
            ),
        )
    )
    await service.report("r-later", case="r-first", address=OTHER_ADDRESS)

    [notice] = service.out.of(topics.NOTIFICATIONS, "r-later")
    assert isinstance(notice, events_pb2.Notification)
    assert notice.recipient.group_id == liaison.group.id
    assert notice.recipient.group_name == liaison.group.name
    assert f"新报告的住址与原报告不同：{OTHER_ADDRESS}，请核实。" in notice.body


async def test_reports_of_one_person_in_one_batch_make_one_case_raised_once(
    service: Service,
) -> None:
    await service.batch(
        [
            accepted("r-first", risk=MEDIUM, person="k-person"),
            accepted("r-later", case="r-first", risk=HIGH, person="k-person"),
            accepted("r-again", case="r-first", risk=HIGH, person="k-person"),
            accepted("r-other", address=OTHER_ADDRESS, person="k-other"),
        ]
    )

    task, raise_event = service.out.of(topics.TASKS, "r-first")  # the raise names the case's
    assert isinstance(task, events_pb2.TaskEvent) and isinstance(raise_event, events_pb2.TaskEvent)
    assert (task.kind, raise_event.kind) == (
        events_pb2.TASK_EVENT_KIND_ASSIGNED, events_pb2.TASK_EVENT_KIND_RISK_RAISED
    )  # fmt: skip
    [raised] = service.out.raises()  # the third report is no higher than the second
    assert raised.message.raised_by_report_id == "r-later"
    # A record's task event goes before its notices, the raise after the task it raises.
    order = [(t, m.report_id) for t, m in service.out.published]
    assert order.index((topics.TASKS, "r-first")) < order.index((topics.NOTIFICATIONS, "r-first"))
    assert [e.message.task_id for t, e in service.out.envelopes if t == topics.TASKS] == [
        task.task_id, task.task_id, service.out.of(topics.TASKS, "r-other")[0].task_id,
    ]  # fmt: skip
    for later in ("r-later", "r-again"):
        placed = await service.placement(later)
        assert (placed.task_id, placed.merged_into) == (task.task_id, "r-first")
        [notice] = service.out.of(topics.NOTIFICATIONS, later)
        assert notice.kind == events_pb2.NOTIFICATION_KIND_CASE_ENRICHED
    async with service.db.session() as session:
        case = await storage.open_case(session, "r-first")
    assert case is not None and case.risk == HIGH
    other = await service.placement("r-other")
    assert other.merged_into == "" and other.task_id != task.task_id
    opened = Counter([task.assignee.person_id, other.assignee_id])  # two cases, whoever holds them
    assert await service.open_counts() == opened
    assert {p: service.load.of(p) for p in opened} == opened


async def test_a_batch_spreads_its_tasks_and_counts_them_only_once_committed(
    service: Service, directory: Directory
) -> None:
    building = "cm02-g01-b02"
    cadres = {u.responsible_id for u in directory.children(building)}
    assert len(cadres) >= 2
    # Only a building is known: its least loaded cadre takes the report.
    address = f"城关社区{directory.nodes['cm02-g01'].name}2号楼"
    reports = [accepted(f"r-{i}", address=address, person=f"k-{i}") for i in range(2)]

    await service.batch(reports, crash=True)
    assert all(service.load.of(c) == 0 for c in cadres if c)  # rolled back: nothing counted
    await service.batch(reports)

    taken = [(await service.placement(r.report_id)).assignee_id for r in reports]
    assert len(set(taken)) == 2 and set(taken) <= cadres  # the second saw the first's task
    assert [service.load.of(c) for c in taken] == [1, 1]


def test_the_tasks_consumer_skips_what_it_does_not_act_on() -> None:
    def accepts(event: events_pb2.TaskEvent) -> bool:
        return tasks_accepts(Envelope("e", "k", event))

    group = common_pb2.Responsible(group_id="grp-x")
    assert accepts(events_pb2.TaskEvent(kind=events_pb2.TASK_EVENT_KIND_COMPLETED))
    assert accepts(events_pb2.TaskEvent(kind=events_pb2.TASK_EVENT_KIND_REASSIGNED, assignee=group))
    assert accepts(
        events_pb2.TaskEvent(kind=events_pb2.TASK_EVENT_KIND_SENT_TO_TRIAGE, assignee=group)
    )
    assert not accepts(events_pb2.TaskEvent(kind=events_pb2.TASK_EVENT_KIND_REASSIGNED))
    assert not accepts(events_pb2.TaskEvent(kind=events_pb2.TASK_EVENT_KIND_ASSIGNED))
    assert not accepts(events_pb2.TaskEvent(kind=events_pb2.TASK_EVENT_KIND_RISK_RAISED))
    # Not a task event at all: taken, for the handler to refuse (and dead-letter).
    assert tasks_accepts(Envelope("e", "k", events_pb2.ReportAccepted()))


def test_a_replayed_enrichment_repeats_its_notice_id(directory: Directory) -> None:
    case = Case("r-first", "t-1", HOUSEHOLD, "cm03-g02", False, HIGH, "", "grp-x", 1)
    report = events_pb2.ReportAccepted(report_id="r-later", origin_risk=HIGH, address=ADDRESS)

    def notice() -> events_pb2.Notification:
        return enrichment(
            case,
            report,
            decision=decision(HIGH),
            resolution=directory.locate(ADDRESS),
            recipient=common_pb2.Responsible(group_id="grp-x"),
            link="http://x/t-1",
            now=datetime.now(UTC),
        )

    first, again = notice(), notice()
    assert first.notification_id == again.notification_id
    assert first.title == "同一人员再次被报告"  # a high risk again is no higher
