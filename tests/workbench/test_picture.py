"""Each level's daily picture without HTTP: a line per node below from the tasks, visits, report
sources and zero-reports of known data, their total, and the nodes below from the Directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridline.contracts.v1 import common_pb2, directory_pb2
from gridline.db import Database
from gridline.settings import Settings
from gridline.staff.roles import Level
from services.escalation import storage
from services.escalation.domain import TaskState
from services.escalation.picture import arrival_bars, share_bars
from services.escalation.picture_flows import nodes_below, picture_lines
from services.escalation.register_flows import Scope
from services.escalation.zero_reports import Schedule

DAY = date(2022, 1, 28)
MORNING = datetime(2022, 1, 28, 2, 0, tzinfo=UTC)
NOON = MORNING + timedelta(hours=4)
SCHEDULE = Schedule(time(20, 0), timedelta(hours=1))
HIGH, LOW = common_pb2.RISK_LEVEL_HIGH, common_pb2.RISK_LEVEL_LOW
CADRE = common_pb2.CHAIN_LEVEL_CADRE


def task(n: int, grid: str, community: str, risk: int, state: str, **values: Any) -> storage.Task:
    base: dict[str, Any] = dict(
        task_id=f"k{n}", report_id=f"r{n}", node_id=f"h{n}", grid_id=grid, community_id=community,
        township_id="t1", triage=False, state=state, level=CADRE, assignee_group_id="g",
        assignee_level=CADRE, origin_risk=risk, summary="张*", report_accepted_at=MORNING,
        created_at=MORNING, assigned_at=MORNING,
    )  # fmt: skip
    return storage.Task(**(base | values))


def visit(n: int, household: str, grid: str, outcome: str) -> storage.HouseholdVisit:
    return storage.HouseholdVisit(
        visit_id=f"v{n}", household_id=household, grid_id=grid, community_id="cm1",
        township_id="t1", outcome=outcome, visited_at=MORNING, visitor="王伟",
        visitor_subject="p-a", channel="http", recorded_at=MORNING,
    )  # fmt: skip


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """Township t1: community cm1 (grids g1, g2) with four arrivals of the day, cm2 (grid g3)
    with one from the day before; visits in g1; g1's zero-report filed."""
    async with Database(Settings(data_dir=tmp_path), "escalation", storage.TABLES) as database:
        async with database.session() as session:
            session.add_all([
                task(1, "g1", "cm1", HIGH, TaskState.UNDER_CONTROL,
                     report_source=common_pb2.REPORT_SOURCE_CADRE_VISIT),
                task(2, "g1", "cm1", LOW, TaskState.CLOSED),
                task(3, "g2", "cm1", LOW, TaskState.ASSIGNED, deadline_at=MORNING),
                task(4, "cm1", "cm1", 0, TaskState.TRIAGE, triage=True,
                     deadline_at=NOON + timedelta(1)),
                task(5, "g3", "cm2", LOW, TaskState.ASSIGNED,
                     report_accepted_at=MORNING - timedelta(days=1)),
                visit(1, "h1", "g1", "met"), visit(2, "h2", "g1", "nobody_home"),
                visit(3, "h9", "g1", "refused"),
                storage.ZeroReport(report_id="z1", grid_id="g1", community_id="cm1",
                                   township_id="t1", day=DAY.isoformat(), arrivals=2,
                                   under_control=1, abnormal=0, submitted_by="王伟",
                                   channel="http", submitted_at=MORNING),
            ])  # fmt: skip
        yield database


def info(node_id: str, kind: str, name: str, parent: str) -> directory_pb2.NodeInfo:
    return directory_pb2.NodeInfo(node_id=node_id, kind=kind, name=name, parent_id=parent)


NODES = [
    info("t1", "township", "石洞镇", "c"), info("t2", "township", "忠和镇", "c"),
    info("cm1", "community", "三川社区", "t1"), info("cm2", "community", "城北社区", "t1"),
    info("cm3", "community", "忠和社区", "t2"),
    info("g1", "grid", "文化苑", "cm1"), info("g2", "grid", "三川苑", "cm1"),
    info("g3", "grid", "新建村", "cm2"), info("g4", "grid", "忠和村", "cm3"),
]  # fmt: skip


async def nodes(
    node_ids: Iterable[str] = (), *, under_node_id: str = "", kind: str = ""
) -> list[directory_pb2.NodeInfo]:
    """The Directory's ListNodes over the county above."""
    parent = {n.node_id: n.parent_id for n in NODES}

    def under(node_id: str) -> bool:
        while node_id in parent:
            node_id = parent[node_id]
            if node_id == under_node_id:
                return True
        return False

    named = [n for n in NODES if n.node_id in set(node_ids)]
    return named + [n for n in NODES if kind and n.kind == kind and under(n.node_id)]


async def test_nodes_below_each_level_carry_their_grids() -> None:
    county = await nodes_below(nodes, Level.COUNTY, "c")
    assert [(b.name, b.grid_ids) for b in county] == [
        ("石洞镇", ("g1", "g2", "g3")), ("忠和镇", ("g4",)),
    ]  # fmt: skip
    township = await nodes_below(nodes, Level.TOWNSHIP, "t1")
    assert [(b.name, b.grid_ids) for b in township] == [
        ("三川社区", ("g1", "g2")), ("城北社区", ("g3",)),
    ]  # fmt: skip
    assert [b.name for b in await nodes_below(nodes, Level.COMMUNITY, "cm1")] == [
        "文化苑",
        "三川苑",
    ]
    assert [b.grid_ids for b in await nodes_below(nodes, Level.GRID, "g2")] == [("g2",)]


async def test_a_townships_picture_puts_its_communities_side_by_side(db: Database) -> None:
    below = await nodes_below(nodes, Level.TOWNSHIP, "t1")
    households = {"g1": 4, "g2": 6, "g3": 5}
    lines = await picture_lines(
        db, SCHEDULE, Scope("township_id", "t1"), "community_id", below, households, DAY, DAY,
        NOON,
    )  # fmt: skip
    cm1, cm2, total = lines
    assert (cm1.name, cm1.arrivals, cm1.risk(HIGH), cm1.risk(LOW), cm1.risk(0)) == (
        "三川社区", 4, 1, 2, 1,
    )  # fmt: skip
    # Placed on a household, under a measure, ended, overdue (past its deadline) now.
    assert (cm1.placed, cm1.under_measure, cm1.ended, cm1.overdue) == (3, 1, 1, 1)
    # 2 of its 2 grids' reports due, 1 filed; met and refused count as reached, nobody home not.
    assert (cm1.reports_filed, cm1.reports_due, cm1.compliance) == (1, 2, 0.5)
    assert cm1.visit_rate == pytest.approx(2 / 10)
    # As the zero-report summaries count it, by grid: the triage arrival has no grid yet.
    assert cm1.cadre_share == pytest.approx(1 / 3)
    assert (cm2.arrivals, cm2.visit_rate, cm2.cadre_share, cm2.compliance) == (0, 0.0, None, 0.0)
    assert (total.name, total.arrivals, total.reports_due) == ("合计", 4, 3)
    assert total.visit_rate == pytest.approx(2 / 15)
    # Over two days cm2's arrival of the day before counts too.
    span = await picture_lines(
        db, SCHEDULE, Scope("township_id", "t1"), "community_id", below, None,
        DAY - timedelta(days=1), DAY, NOON,
    )  # fmt: skip
    assert [line.arrivals for line in span] == [4, 1, 5]
    assert span[0].visit_rate is None  # without household counts the rate is unknown, not 0
    assert [b.caption for b in arrival_bars(span)] == ["4人", "1人"]
    assert [b.caption for b in share_bars(span, "compliance")] == ["25.0%", "0.0%"]
