"""Escalation's metrics move with what happens: compliance, escalations, open tasks, reports."""

from __future__ import annotations

from datetime import time, timedelta

from prometheus_client import REGISTRY

from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.timestamps import SHANGHAI
from services.escalation import zero_report_flows
from services.escalation.deadlines import count_open_tasks, fire_due
from services.escalation.domain import Action
from services.escalation.flows import Change, change_task
from services.escalation.metrics import level_label
from services.escalation.policy import every_level_after
from services.escalation.zero_reports import Counts, RosterGrid, Schedule
from tests.escalation.conftest import START, Clock, new_task, static_chain

POLICY = every_level_after(timedelta(minutes=30))


def sample(name: str, **labels: str) -> float:
    """The sum of the samples of `name` with these labels, whatever their other labels."""
    return sum(
        found.value
        for metric in REGISTRY.collect()
        for found in metric.samples
        if found.name == name and labels.items() <= found.labels.items()
    )


async def test_deadline_compliance_and_escalations_by_level_and_reason(
    db: Database, clock: Clock
) -> None:
    early, late = new_task(POLICY, clock()), new_task(POLICY, clock())
    async with db.session() as session:
        session.add_all([early, late])
    on_time_before = sample("gridline_escalation_acknowledgements_total", outcome="on_time")
    late_before = sample("gridline_escalation_acknowledgements_total", outcome="late")
    liaison_before = sample(
        "gridline_escalation_escalations_total",
        level="liaison", reason="overdue",
    )  # fmt: skip

    clock.advance(timedelta(minutes=10))
    await change_task(db, POLICY, early.task_id, Change(Action.ACKNOWLEDGE, "c", "http"), clock)
    clock.advance(timedelta(minutes=30))
    await fire_due(db, static_chain, POLICY, clock())
    await change_task(db, POLICY, late.task_id, Change(Action.ACKNOWLEDGE, "c", "http"), clock)

    assert (
        sample("gridline_escalation_acknowledgements_total", outcome="on_time")
        == on_time_before + 1
    )
    assert sample("gridline_escalation_acknowledgements_total", outcome="late") == late_before + 1
    assert sample(
        "gridline_escalation_escalations_total",
        level="liaison", reason="overdue",
    ) == liaison_before + 1  # fmt: skip


async def test_open_tasks_by_level_and_age(db: Database, clock: Clock) -> None:
    tasks = [new_task(POLICY, START - timedelta(hours=h)) for h in (0, 2, 2, 30)]
    tasks[3].level = common_pb2.CHAIN_LEVEL_COMMUNITY
    async with db.session() as session:
        session.add_all(tasks)
    counts = await count_open_tasks(db, START + timedelta(minutes=1))
    assert counts == {(1, "lt_1h"): 1, (1, "1h_4h"): 2, (3, "1d_3d"): 1}
    assert sample("gridline_escalation_open_tasks", level="cadre", age="1h_4h") == 2
    assert sample("gridline_escalation_open_tasks", level="community", age="1d_3d") == 1


def test_level_labels_name_the_chain_level() -> None:
    assert [level_label(level) for level in range(1, 6)] == [
        "cadre", "liaison", "community", "township_office", "county_office",
    ]  # fmt: skip


async def test_zero_report_compliance_by_outcome(db: Database) -> None:
    schedule = Schedule(time(20, 0), timedelta(hours=1))
    day = START.astimezone(SHANGHAI).date()
    due = schedule.due_at(day)
    before = {
        outcome: sample("gridline_escalation_zero_reports_total", outcome=outcome)
        for outcome in ("on_time", "late")
    }
    for moment in (due - timedelta(minutes=1), due + timedelta(minutes=1)):
        await zero_report_flows.submit(db, schedule, "grid-m", day, Counts(), actor="c",
                                       channel="http", moment=moment)  # fmt: skip
    for outcome in ("on_time", "late"):
        assert (
            sample("gridline_escalation_zero_reports_total", outcome=outcome) == before[outcome] + 1
        )


async def test_grids_missing_at_the_due_time_count_once_each(db: Database) -> None:
    schedule = Schedule(time(20, 0), timedelta(hours=1))
    day = START.astimezone(SHANGHAI).date()
    office = common_pb2.Responsible(
        level=common_pb2.CHAIN_LEVEL_COMMUNITY, group_id="grp-community", group_name="社区"
    )
    roster = [
        RosterGrid(f"grid-{n}", f"网格{n}", 10, {common_pb2.CHAIN_LEVEL_COMMUNITY: office})
        for n in range(3)
    ]
    early = schedule.due_at(day) - timedelta(hours=1)
    await zero_report_flows.submit(
        db, schedule, "grid-0", day, Counts(), actor="c", channel="http", moment=early
    )
    before = sample("gridline_escalation_zero_reports_total", outcome="missing")
    await zero_report_flows.advance(db, roster, schedule, schedule.due_at(day))
    assert sample("gridline_escalation_zero_reports_total", outcome="missing") == before + 2
