"""A zero-report day for the demo county: who is told of missing grids, when, and the sums."""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from structlog.testing import capture_logs

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.ids import derived_id
from gridline.settings import Settings
from gridline.staff.identity import Place, Staff
from gridline.staff.roles import Role as StaffRole
from gridline.timestamps import SHANGHAI
from services.assignment.demo_county import generate
from services.assignment.directory import Directory, Role
from services.assignment.grid import NodeKind
from services.assignment.placement import place
from services.escalation import storage, visit_flows
from services.escalation import zero_report_flows as flows
from services.escalation.consumers import task_handler
from services.escalation.policy import every_level_after
from services.escalation.roster import DirectoryRoster
from services.escalation.visit_flows import Visit
from services.escalation.visits import Outcome
from services.escalation.zero_reports import (
    Counts,
    Records,
    RosterGrid,
    Schedule,
    roll_up,
)
from tests.assignment.serving import directory_server
from tests.assignment.support import LINKS, decision
from tests.escalation.conftest import Clock, new_task
from tests.escalation.local import HOUSEHOLD, county
from tests.escalation.records import published
from tests.helpers import eventually

DAY = date(2026, 1, 20)
SCHEDULE = Schedule(due=time(20, 0), township_after=timedelta(hours=1))
OFFICE_LEVELS = {
    Role.COMMUNITY_STAFF: common_pb2.CHAIN_LEVEL_COMMUNITY,
    Role.TOWNSHIP_OFFICE: common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
    Role.COUNTY_OFFICE: common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
}
COMMUNITY = common_pb2.CHAIN_LEVEL_COMMUNITY
TOWNSHIP = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
COUNTY = common_pb2.CHAIN_LEVEL_COUNTY_OFFICE


@pytest.fixture(scope="module")
def directory() -> Directory:
    """The demo county as assignment loads it."""
    county = generate()
    return Directory(county.nodes, county.people, county.groups)


@pytest.fixture(scope="module")
def roster(directory: Directory) -> list[RosterGrid]:
    """The demo county's grids, their households and office groups, as the Directory has them."""
    households = Counter(
        directory.ancestor(n.id, NodeKind.GRID).id  # type: ignore[union-attr]
        for n in directory.nodes.values()
        if n.kind is NodeKind.HOUSEHOLD
    )
    grids = []
    for node in directory.nodes.values():
        if node.kind is not NodeKind.GRID:
            continue
        offices: dict[int, common_pb2.Responsible] = {
            OFFICE_LEVELS[link.role]: common_pb2.Responsible(
                level=OFFICE_LEVELS[link.role], group_id=link.group.id, group_name=link.group.name
            )
            for link in directory.chain(node.id)
            if link.role in OFFICE_LEVELS
        }
        grids.append(RosterGrid(node.id, node.name, households[node.id], offices))
    return sorted(grids, key=lambda g: g.grid_id)


@dataclass
class FixedRoster:
    """A roster that never changes, with the households its grids carry."""

    fixed: list[RosterGrid]

    async def grids(self) -> list[RosterGrid]:
        return self.fixed

    async def households(self) -> dict[str, int]:
        return {g.grid_id: g.households for g in self.fixed if g.households is not None}


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute), SHANGHAI)


def numbers(body: str) -> dict[str, int]:
    """The counts a summary states."""
    pattern = r"各网格报送：新增来返 (\d+) 人，在管 (\d+) 人，异常 (\d+) 人"
    found = re.search(pattern, body)
    assert found, body
    return dict(zip(("arrivals", "under_control", "abnormal"), map(int, found.groups()),
                    strict=True))  # fmt: skip


async def test_a_demo_county_day(
    db: Database, outbox: Outbox, settings: Settings, roster: list[RosterGrid]
) -> None:
    assert len(roster) == 46
    rng = random.Random(6)
    never, late = roster[:4], roster[4:6]
    on_time = roster[6:]
    counts: dict[str, Counts] = {}
    for grid in roster[4:]:
        counts[grid.grid_id] = Counts(
            arrivals=rng.randrange(0, 30),
            under_control=rng.randrange(0, 40),
            abnormal=rng.randrange(0, 2),
        )
    counts[on_time[0].grid_id] = Counts()  # a zero report is a report

    assert await flows.advance(db, roster, SCHEDULE, at(19)) == []
    for grid in on_time:
        await flows.submit(db, SCHEDULE, grid.grid_id, DAY, counts[grid.grid_id],
                           actor="cadre", channel="http", moment=at(19, 30))  # fmt: skip

    at_due = await flows.advance(db, roster, SCHEDULE, at(20))
    for grid in late:
        await flows.submit(db, SCHEDULE, grid.grid_id, DAY, counts[grid.grid_id],
                           actor="cadre", channel="http", moment=at(20, 30))  # fmt: skip
    assert await flows.advance(db, roster, SCHEDULE, at(20, 59)) == []
    an_hour_later = await flows.advance(db, roster, SCHEDULE, at(21))
    assert await flows.advance(db, roster, SCHEDULE, at(23)) == []

    notices = {
        e.message.notification_id: e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification)
        and e.message.notification_id in {*at_due, *an_hour_later}
    }
    assert len(notices) == len(at_due) + len(an_hour_later)

    # At the due time: each community with missing grids hears once, naming them.
    missing_now = {g.grid_id for g in never + late}
    communities = {g.offices[COMMUNITY].group_id for g in never + late}
    told = [notices[i] for i in at_due]
    assert sorted(n.recipient.group_id for n in told) == sorted(communities)
    assert {n.recipient.level for n in told} == {COMMUNITY}
    for notice in told:
        named = {g.grid_id for g in roster if g.grid_name in notice.body}
        expected = {
            g.grid_id
            for g in never + late
            if g.offices[COMMUNITY].group_id == notice.recipient.group_id
        }
        assert named & missing_now == expected

    # An hour later: the township hears of the grids still missing, not of the late ones.
    later = [notices[i] for i in an_hour_later]
    township_told = [n for n in later if n.kind == events_pb2.NOTIFICATION_KIND_ESCALATION]
    assert [n.recipient.level for n in township_told] == [TOWNSHIP]
    assert all(g.grid_name in township_told[0].body for g in never)
    assert not any(g.grid_name in township_told[0].body for g in late)

    raised = [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.ESCALATIONS, after=outbox)
        if isinstance(e.message, events_pb2.EscalationRaised)
        and e.message.reason == flows.MISSING_REASON and e.message.grid_id in missing_now
        and e.message.raised_at.ToDatetime().date() == DAY
    ]  # fmt: skip
    assert sorted((r.grid_id, r.level) for r in raised) == sorted(
        [(g.grid_id, COMMUNITY) for g in never + late] + [(g.grid_id, TOWNSHIP) for g in never]
    )

    # One summary per office group; the sums add up level by level.
    summaries = [n for n in later if n.kind == events_pb2.NOTIFICATION_KIND_DAILY_SUMMARY]
    groups = {g.offices[level].group_id for g in roster for level in (COMMUNITY, TOWNSHIP, COUNTY)}
    assert sorted(n.recipient.group_id for n in summaries) == sorted(groups)
    by_group = {n.recipient.group_id: numbers(n.body) for n in summaries}

    def expected_sum(level: int, group_id: str) -> dict[str, int]:
        total = Counts()
        for grid in roster:
            if grid.offices[level].group_id == group_id and grid.grid_id in counts:
                total += counts[grid.grid_id]
        return {k: getattr(total, k) for k in ("arrivals", "under_control", "abnormal")}

    for notice in summaries:
        level = notice.recipient.level
        assert by_group[notice.recipient.group_id] == expected_sum(level, notice.recipient.group_id)
    for upper, lower in ((TOWNSHIP, COMMUNITY), (COUNTY, TOWNSHIP)):
        for group_id in {g.offices[upper].group_id for g in roster}:
            below = {
                g.offices[lower].group_id for g in roster if g.offices[upper].group_id == group_id
            }
            added = {k: sum(by_group[b][k] for b in below) for k in by_group[group_id]}
            assert added == by_group[group_id]

    # The county's coverage figures: no visit recorded, no report registered that day.
    [county] = [n for n in summaries if n.recipient.level == COUNTY]
    known = [g.households for g in roster if g.households is not None]
    assert len(known) == len(roster)  # the fixture counts every grid's households
    households = sum(known)
    assert "应报网格 46 个，已报 42 个，未报 4 个" in county.body
    assert f"入户率 0.0%（0/{households} 户，无人在家不计入）" in county.body
    assert "包户干部入户排查发现 0/0 人，占 —" in county.body


def test_the_seed_county_s_coverage_figures() -> None:
    # Seed 000: 778 of 1,043 arrivals found by cadres (74.6%); 98.9% of households visited.
    grid = RosterGrid("g", "网格", 1000, {
        level: common_pb2.Responsible(level=level, group_id=f"o{level}")
        for level in (COMMUNITY, TOWNSHIP, COUNTY)
    })  # fmt: skip
    [_, _, county] = roll_up(
        [grid], {}, {"g": Records(households_visited=989, arrivals=1043, found_by_cadres=778)}
    )
    assert f"{county.cadre_share:.1%}" == "74.6%"
    assert f"{county.visit_rate:.1%}" == "98.9%"


def test_the_due_time_is_shanghai_time() -> None:
    assert SCHEDULE.due_at(DAY).astimezone(SHANGHAI).hour == 20
    assert SCHEDULE.due_at(DAY) == datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
    assert SCHEDULE.due_at(DAY).utcoffset() == timedelta(hours=8)
    # 17:00 UTC on the 20th is 01:00 on the 21st in Shanghai: the next reporting day.
    assert SCHEDULE.day_of(datetime(2026, 1, 20, 17, 0, tzinfo=UTC)) == DAY + timedelta(days=1)
    assert SCHEDULE.day_of(datetime(2026, 1, 20, 15, 59, tzinfo=UTC)) == DAY


async def test_the_watcher_catches_up_on_a_day_it_was_stopped_across(
    db: Database, roster: list[RosterGrid]
) -> None:
    day = date(2026, 2, 3)
    clock = Clock(datetime.combine(day, time(23, 0), SHANGHAI))

    async def finished() -> bool:
        async with db.session() as session:
            run = await session.get(storage.ZeroReportRun, day.isoformat())
        return run is not None and run.stage == 2

    async with flows.ZeroReportWatcher(
        db, FixedRoster(roster[:3]), SCHEDULE, 0.05, clock
    ) as watcher:
        await eventually(finished, within=30)
        assert await watcher.alive()


async def test_runtime_summaries_take_the_visit_rate_from_the_directory_or_say_it_is_unknown(
    db: Database,
    outbox: Outbox,
    settings: Settings,
    directory: Directory,
    roster: list[RosterGrid],
) -> None:
    days = (date(2026, 5, 18), date(2026, 5, 19))
    # Every grid but the last six reports; two households of the first grid were visited.
    reported = roster[:-6]
    counts = {g.grid_id: Counts(arrivals=3) for g in reported}
    cadre = Staff("p-c", "张芹", StaffRole.CADRE, reported[0].grid_id)
    for day in days:
        for household in ("h-1", "h-2"):
            await visit_flows.record_visit(
                db, Visit(household, Outcome.MET, datetime.combine(day, time(10), SHANGHAI)),
                Place("t", "cm", reported[0].grid_id), cadre, channel="http",
                moment=datetime.combine(day, time(11), SHANGHAI),
            )  # fmt: skip
    for day in days:
        moment = datetime.combine(day, time(19), SHANGHAI)
        for grid_id, grid_counts in counts.items():
            await flows.submit(db, SCHEDULE, grid_id, day, grid_counts, actor="cadre",
                               channel="http", moment=moment)  # fmt: skip
    clock = Clock(datetime.combine(days[0], time(23), SHANGHAI))

    async def summed(day: date, source: DirectoryRoster) -> None:
        async def finished() -> bool:
            async with db.session() as session:
                run = await session.get(storage.ZeroReportRun, day.isoformat())
            return run is not None and run.stage == 2

        async with flows.ZeroReportWatcher(db, source, SCHEDULE, 0.05, clock):
            await eventually(finished, within=30)

    port = free_port()
    async with DirectoryClient(f"127.0.0.1:{port}", timeout=1.0) as client:
        source = DirectoryRoster(client, clock=clock)
        async with directory_server(directory, settings, port):
            await summed(days[0], source)
        # Assignment is gone: the roster read before serves, the visit rate is unknown.
        clock.advance(timedelta(days=1))
        with capture_logs() as logs:
            await summed(days[1], source)

    county_office = roster[0].offices[COUNTY]
    notices = {
        e.message.notification_id: e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification)
    }

    def county_summary(day: date) -> str:
        notice_id = derived_id("zero-report", "summary", day.isoformat(), str(COUNTY),
                               county_office.group_id)  # fmt: skip
        return notices[notice_id].body

    households = sum(g.households or 0 for g in roster)
    assert households == 20_407
    served, unreachable = county_summary(days[0]), county_summary(days[1])
    assert f"入户率 {2 / households:.1%}（2/{households} 户，无人在家不计入）" in served
    assert "当日入户 2 户，入户率 —（在册户数暂缺，无人在家不计入）" in unreachable
    assert "应报网格 46 个，已报 40 个，未报 6 个" in unreachable
    warnings = {(e["event"], e.get("code")) for e in logs if e["log_level"] == "warning"}
    assert ("household counts unavailable, visit rate left unknown", "UNAVAILABLE") in warnings
    assert ("directory unreachable, keeping the zero-report roster", "UNAVAILABLE") in warnings


def office(level: int, group_id: str) -> common_pb2.Responsible:
    return common_pb2.Responsible(level=level, group_id=group_id)  # type: ignore[arg-type]


async def test_the_visit_rate_and_cadre_share_come_from_visits_and_report_sources(
    db: Database, outbox: Outbox, settings: Settings
) -> None:
    """Known records, level by level: nothing typed counts towards either figure."""
    day = date(2026, 1, 26)
    township, county = office(TOWNSHIP, "z-t"), office(COUNTY, "z-c")
    near, far = office(COMMUNITY, "z-cm-a"), office(COMMUNITY, "z-cm-b")
    roster = [
        RosterGrid("z-g1", "三汇小区", 10, {COMMUNITY: near, TOWNSHIP: township, COUNTY: county}),
        RosterGrid("z-g2", "源丰小区", 20, {COMMUNITY: near, TOWNSHIP: township, COUNTY: county}),
        RosterGrid("z-g3", "文化苑", 30, {COMMUNITY: far, TOWNSHIP: township, COUNTY: county}),
    ]
    places = {
        "z-g1": Place("z-t", "z-cm-a", "z-g1"),
        "z-g2": Place("z-t", "z-cm-a", "z-g2"),
        "z-g3": Place("z-t", "z-cm-b", "z-g3"),
    }

    def shanghai(hour: int, days: int = 0) -> datetime:
        return datetime.combine(day + timedelta(days=days), time(hour), SHANGHAI)

    visits = [
        # z-g1: five households reached (h1 twice counts once; nobody home does not count).
        ("z-g1", "h1", Outcome.MET, 0), ("z-g1", "h1", Outcome.MET, 0),
        ("z-g1", "h2", Outcome.MET, 0), ("z-g1", "h3", Outcome.REFUSED, 0),
        ("z-g1", "h4", Outcome.NEW_ARRIVAL, 0), ("z-g1", "h5", Outcome.MOVED_OUT, 0),
        ("z-g1", "h6", Outcome.NOBODY_HOME, 0),
        # z-g2: two households that day; the days before and after are not that day's.
        ("z-g2", "h7", Outcome.MET, 0), ("z-g2", "h8", Outcome.NEW_ARRIVAL, 0),
        ("z-g2", "h9", Outcome.MET, -1), ("z-g2", "h10", Outcome.MET, 1),
        # z-g3: one household, found again with nobody home later the same day.
        ("z-g3", "h11", Outcome.MET, 0), ("z-g3", "h11", Outcome.NOBODY_HOME, 0),
    ]  # fmt: skip
    for n, (grid_id, household, outcome, days) in enumerate(visits):
        cadre = Staff(f"p-{grid_id}", "张芹", StaffRole.CADRE, grid_id)
        await visit_flows.record_visit(
            db, Visit(household, outcome, shanghai(9, days) + timedelta(minutes=n)),
            places[grid_id], cadre, channel="http", moment=shanghai(18, days),
        )  # fmt: skip
    feed = common_pb2.REPORT_SOURCE_HEALTH_CODE_FEED
    cadre_visit = common_pb2.REPORT_SOURCE_CADRE_VISIT
    reports = [
        ("z-g1", cadre_visit, 0), ("z-g1", cadre_visit, 0), ("z-g1", feed, 0),
        ("z-g2", common_pb2.REPORT_SOURCE_SELF_REPORT, 0),
        ("z-g3", cadre_visit, 0), ("z-g3", feed, 0),
        ("z-g3", common_pb2.REPORT_SOURCE_NEIGHBOUR, 0),
        ("z-g3", common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN, 0),
        ("z-g1", cadre_visit, -1), ("z-g2", cadre_visit, 1),  # other days
    ]  # fmt: skip
    async with db.session() as session:
        for n, (grid_id, source, days) in enumerate(reports):
            accepted = shanghai(8, days) + timedelta(minutes=n)
            task = new_task(every_level_after(timedelta(minutes=30)), accepted)
            task.grid_id, task.report_source = grid_id, source
            session.add(task)
    # Typed counts say nothing of visits; z-g3 does not report at all, its records count.
    for grid_id in ("z-g1", "z-g2"):
        await flows.submit(db, SCHEDULE, grid_id, day, Counts(arrivals=9), actor="cadre",
                           channel="http", moment=shanghai(19))  # fmt: skip

    sent = await flows.advance(db, roster, SCHEDULE, shanghai(20))
    sent += await flows.advance(db, roster, SCHEDULE, shanghai(21))
    bodies = {
        (n.recipient.level, n.recipient.group_id): n.body
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(n := e.message, events_pb2.Notification)
        and n.notification_id in sent
        and n.kind == events_pb2.NOTIFICATION_KIND_DAILY_SUMMARY
    }
    assert len(bodies) == 4

    def figures(level: common_pb2.ChainLevel, group_id: str) -> tuple[str, str]:
        body = bodies[level, group_id]
        visited = re.search(r"入户率 (\S+)（(\d+)/(\d+) 户", body)
        found = re.search(r"排查发现 (\d+)/(\d+) 人，占 (\S+?)，", body)
        assert visited and found, body
        return "{} {}/{}".format(*visited.groups()), "{}/{} {}".format(*found.groups())

    # z-g1 5 of 10, z-g2 2 of 20, z-g3 1 of 30; reports 2 of 3, 0 of 1, 1 of 4 from cadres.
    assert figures(COMMUNITY, "z-cm-a") == ("23.3% 7/30", "2/4 50.0%")
    assert figures(COMMUNITY, "z-cm-b") == ("3.3% 1/30", "1/4 25.0%")
    assert figures(TOWNSHIP, "z-t") == ("13.3% 8/60", "3/8 37.5%")
    assert figures(COUNTY, "z-c") == ("13.3% 8/60", "3/8 37.5%")
    assert "各网格报送：新增来返 18 人" in bodies[COUNTY, "z-c"]


async def test_a_task_keeps_the_source_intake_gave_its_report(db: Database) -> None:
    """The cadre-found share counts what intake knew: the source travels with the task."""
    directory = county()
    address = directory.nodes[HOUSEHOLD].address or ""
    report = events_pb2.ReportAccepted(
        report_id="r-door", person_key="k-door", source=common_pb2.REPORT_SOURCE_CADRE_VISIT,
        origin_name="上海市", origin_risk=common_pb2.RISK_LEVEL_LOW, address=address,
    )  # fmt: skip
    moment = datetime(2026, 1, 26, 2, tzinfo=UTC)
    placed = place(report, directory, now=moment, links=LINKS, decision=decision())
    assert placed.task.report_source == common_pb2.REPORT_SOURCE_CADRE_VISIT
    handle = task_handler(every_level_after(timedelta(minutes=30)), lambda: moment)
    async with db.session() as session:
        await handle(Envelope(event_id="e-door", key="h", message=placed.task), session)
    async with db.session() as session:
        task = await storage.get_task(session, placed.task.task_id)
    assert task is not None and task.report_source == common_pb2.REPORT_SOURCE_CADRE_VISIT
