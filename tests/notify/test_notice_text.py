"""Every notification kind as people read it: built by the services' own builders and flows from
a small demo county, rendered by notify as it sends them (markdown, text, SMS), and read for
English words, directory ids such as `cm01-g03` and zero-padded dates (`01月30日`).

Links are the one place ASCII belongs (they are ours and carry only ids), so they are taken out
before reading. The words and names follow docs/glossary.md.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.outbox import OUTBOX
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.settings import Settings
from services.assignment import cases, placement
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.grid import NodeKind
from services.escalation import check_in_flows, deadlines, measure_flows, zero_report_flows
from services.escalation.check_ins import CheckInConfig, CheckInRules
from services.escalation.consumers import task_handler
from services.escalation.domain import Action, Measure
from services.escalation.flows import Change, change_task
from services.escalation.policy import load_policy
from services.escalation.zero_reports import RosterGrid, Schedule
from services.notify.channels.base import Message
from services.notify.consumers import message_of
from services.notify.robot_check import _test_message
from services.notify.templates import SMS_SEGMENT_CHARS, channel_broken_text, render
from tests.assignment.support import LINKS, decision
from tests.escalation.local import escalation_db

DEADLINES = load_policy(
    Path(__file__).parents[2] / "services/escalation/deadlines.yaml", timedelta(minutes=30)
)
RULES = CheckInRules(CheckInConfig())
SCHEDULE = Schedule(due=time(20, 0), township_after=timedelta(hours=1))
# 1月28日 18:40 in Beijing: a single-digit month and day, so a padded date would show.
ARRIVED = datetime(2022, 1, 28, 10, 40, tzinfo=UTC)
ACCEPTED = datetime(2022, 1, 28, 11, 5, tzinfo=UTC)
HIGH, LOW = common_pb2.RISK_LEVEL_HIGH, common_pb2.RISK_LEVEL_LOW

ASCII_WORD = re.compile(r"[A-Za-z]+")
DIRECTORY_ID = re.compile(r"\b[a-z]+\d*(?:-[a-z0-9]+)+\b")
PADDED_DATE = re.compile(r"(?<!\d)0\d月|月0\d日|\d{4}-\d{2}-\d{2}")


def problems_in(text: str, links: Iterable[str]) -> list[str]:
    """What in `text` a cadre should not have to read: English, ids, padded dates."""
    for link in links:
        if link:
            text = text.replace(link, "")
    found = [f"id {m}" for m in DIRECTORY_ID.findall(text)]
    found += [f"padded date {m}" for m in PADDED_DATE.findall(text)]
    found += [f"English {m!r}" for m in ASCII_WORD.findall(text)]
    return found


def report(
    report_id: str,
    *,
    address: str,
    risk: int,
    source: int = common_pb2.REPORT_SOURCE_SELF_REPORT,
    case: str = "",
) -> events_pb2.ReportAccepted:
    """An accepted report as intake publishes it (masked fields only)."""
    accepted = events_pb2.ReportAccepted(
        report_id=report_id,
        person_key=f"person-{report_id}",
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
    accepted.arrived_at.FromDatetime(ARRIVED)
    accepted.accepted_at.FromDatetime(ACCEPTED)
    return accepted


@pytest.fixture(scope="module")
def county() -> Directory:
    """A small demo county (its names and ids as the full one has them)."""
    made = generate(households=300)
    return Directory(made.nodes, made.people, made.groups, made.micro_grids)


def with_leader(county: Directory) -> str:
    """The address of a household whose micro-grid has a leader."""
    address = next(
        node.address
        for node in county.nodes.values()
        if node.kind is NodeKind.HOUSEHOLD and county.micro_grid_leader(node.id) is not None
    )
    assert address is not None
    return address


def placed(county: Directory) -> list[placement.PlacedReport]:
    """A high-risk arrival at a household with a micro-grid leader, a low-risk one from the
    health-code feed, and an address that reaches no household."""
    household = with_leader(county)
    unknown = "皋兰县石洞镇城北社区新建平房12号"
    made = []
    for report_id, address, risk, source in (
        ("r-high", household, HIGH, common_pb2.REPORT_SOURCE_SELF_REPORT),
        ("r-low", household, LOW, common_pb2.REPORT_SOURCE_HEALTH_CODE_FEED),
        ("r-triage", unknown, LOW, common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN),
    ):
        made.append(
            placement.place(
                report(report_id, address=address, risk=risk, source=source),
                county,
                now=ACCEPTED,
                links=LINKS,
                decision=decision(risk),
            )
        )
    return made


def enriched(county: Directory, first: placement.PlacedReport) -> events_pb2.Notification:
    """A later checkpoint report of a low-risk case's person, at a higher risk."""
    task = first.task
    address = county.nodes[first.node_id].address
    assert address is not None
    case = cases.Case(
        report_id=task.report_id, task_id=task.task_id, node_id=first.node_id,
        grid_id=task.grid_id, triage=first.triage, risk=LOW,
        assignee_id=task.assignee.person_id, holder_group_id=task.assignee.group_id,
        holder_level=task.assignee.level,
    )  # fmt: skip
    later = report(
        "r-later",
        address=address,
        risk=HIGH,
        source=common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN,
        case=task.report_id,
    )
    return cases.enrichment(
        case,
        later,
        decision=decision(HIGH),
        resolution=county.locate(later.address),
        recipient=cases.holder(county, case),
        link=first.notification.link,
        now=ACCEPTED + timedelta(hours=1),
    )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with escalation_db(Settings(data_dir=tmp_path)) as database:
        yield database


async def staged_notices(db: Database) -> list[events_pb2.Notification]:
    """Every notice escalation's transactions staged."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(OUTBOX.c.value).where(OUTBOX.c.topic == topics.NOTIFICATIONS)
        )
        return [events_pb2.Notification.FromString(value) for (value,) in rows.all()]


async def escalated(
    db: Database, county: Directory, made: list[placement.PlacedReport]
) -> list[events_pb2.Notification]:
    """What escalation tells people about the placed tasks: the high-risk notice at once, the
    deadlines' escalations, a fever and a missed check-in, a reassignment, and a day's
    zero-reports (missing grids and the summaries)."""

    async def chain_of(node_id: str) -> list[common_pb2.Responsible]:
        return [placement.responsible(link) for link in county.chain(node_id)]

    store = task_handler(DEADLINES, clock=lambda: ACCEPTED)
    async with db.session() as session:
        for placed_report in made:
            task = placed_report.task
            await store(Envelope(event_id=task.task_id, key=task.grid_id, message=task), session)
    await deadlines.fire_due(db, chain_of, DEADLINES, ACCEPTED, LINKS)
    await deadlines.fire_due(db, chain_of, DEADLINES, ACCEPTED + timedelta(hours=5), LINKS)

    high, low = made[0].task, made[1].task
    moment = ACCEPTED + timedelta(hours=6)
    for action in (Action.ACKNOWLEDGE, Action.RECORD_VISIT, Action.START_MEASURE):
        change = Change(action, "包户干部", "page", measure=Measure.QUARANTINE)
        await change_task(db, DEADLINES, high.task_id, change, lambda: moment, RULES)
    await check_in_flows.take(
        db, RULES, chain_of, task_id=high.task_id, temperature=38.2, symptoms=["咳嗽"],
        channel="link", source_id="page-1", moment=moment, links=LINKS,
    )  # fmt: skip
    await check_in_flows.fire_missed(db, chain_of, RULES, moment + timedelta(days=2), LINKS)
    early_end = Change(
        Action.REQUEST_EARLY_END, "包户干部", "page", note="核酸检测均为阴性",
        authority=common_pb2.CHAIN_LEVEL_CADRE,
    )  # fmt: skip
    await change_task(db, DEADLINES, high.task_id, early_end, lambda: moment, RULES)
    # The measure's reminders, tests and end notice, a pass every three hours to its end.
    for hours in range(0, 15 * 24, 3):
        await measure_flows.fire_due(db, chain_of, RULES, moment + timedelta(hours=hours), LINKS)

    other = next(
        link for link in county.chain(low.household_id) if link.person.id != low.assignee.person_id
    )
    reassign = Change(Action.REASSIGN, "社区", "page", assignee=placement.responsible(other))
    await change_task(db, DEADLINES, low.task_id, reassign, lambda: moment, links=LINKS)

    day = SCHEDULE.day_of(moment)
    roster = [
        RosterGrid(
            node.id,
            node.name,
            10,
            {
                r.level: r
                for r in await chain_of(node.id)
                if r.level >= common_pb2.CHAIN_LEVEL_COMMUNITY
            },
        )
        for node in county.nodes.values()
        if node.kind is NodeKind.GRID
    ]
    for hours in (0, 1):
        await zero_report_flows.advance(
            db, roster, SCHEDULE, SCHEDULE.due_at(day) + timedelta(hours=hours)
        )
    return await staged_notices(db)


def notify_made() -> list[Message]:
    """The two kinds notify writes itself: a robot's test and a broken channel."""
    title, body = channel_broken_text("包户干部王伟工作群", "wecom")
    broken = build_notice(
        "broken-1",
        events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN,
        common_pb2.Responsible(group_id="grp-p-county", group_name="皋兰县联防联控办"),
        title=title,
        body=body,
        at=ACCEPTED,
    )
    return [message_of(broken), _test_message("grp-p-cm01-g01")]


async def test_every_notification_kind_reads_as_chinese_with_names_and_plain_dates(
    county: Directory, db: Database
) -> None:
    made = placed(county)
    notices = [n for p in made for n in p.notifications]
    notices.append(enriched(county, made[1]))
    notices += await escalated(db, county, made)
    messages = [message_of(n) for n in notices] + notify_made()

    kinds = {m.kind for m in messages}
    every = {name for name, number in events_pb2.NotificationKind.items() if number}
    assert every <= kinds, f"no notice built for {sorted(every - kinds)}: add its builder here"
    found = []
    for message in messages:
        rendered = render(message)
        forms = {
            "title": rendered.title,
            "markdown": rendered.markdown,
            "text": rendered.text,
            "sms": rendered.sms_text,
            **{f"sms {k}": v for k, v in rendered.sms_params.items()},
        }
        for form, text in forms.items():
            found += [
                (message.kind, form, problem, text) for problem in problems_in(text, [message.link])
            ]
        if message.link:
            assert rendered.sms_text.endswith(message.link), rendered.sms_text
        # The words before a link fit one segment (the vendor adds its signature).
        assert len(rendered.sms_text.removesuffix(message.link)) <= SMS_SEGMENT_CHARS
    assert not found, "\n".join(map(str, found))


def test_the_reader_catches_what_it_is_for() -> None:
    assert problems_in("三汇小区（cm01-g03）", []) == ["id cm01-g03", "English 'cm'", "English 'g'"]
    assert problems_in("01月30日零报告", []) == ["padded date 01月"]
    assert problems_in("1月30日 08:05 已上报", []) == []
    assert problems_in("请点链接：http://x/t/t-1?r=a", ["http://x/t/t-1?r=a"]) == []
    assert problems_in("task overdue", []) == ["English 'task'", "English 'overdue'"]
