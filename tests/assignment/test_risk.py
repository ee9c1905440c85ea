"""Risk areas with history and the policy file, without Kafka or HTTP; and the low-risk
arrivals checkpoints find, registered like any other (through the report handler once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.settings import Settings
from services.assignment import demo_county, storage
from services.assignment.assignee import CadreLoad
from services.assignment.consumers import report_handler
from services.assignment.directory import Directory
from services.assignment.following import Current
from services.assignment.placement import place
from services.assignment.risk import RiskArea, RiskAreas, decide, load_policy
from tests.assignment.support import LINKS, POLICY
from tests.assignment.test_cases import HOUSEHOLD, Recorder, accepted

T0 = datetime(2022, 1, 10, 8, 0, tzinfo=UTC)


def _area(code: str, level: str, start: datetime, end: datetime | None = None) -> RiskArea:
    return RiskArea(code, level, start, end, changed_at=start)  # type: ignore[arg-type]


def test_the_latest_change_covering_a_region_decides_and_provinces_cover_their_cities() -> None:
    areas = RiskAreas([_area("310000", "medium", T0)])
    assert areas.level_of("310115", T0) == "medium"
    assert areas.level_of("310115", T0 - timedelta(seconds=1)) is None
    assert areas.level_of("320115", T0) is None
    later = _area("310115", "high", T0 + timedelta(days=1), T0 + timedelta(days=15))
    areas = RiskAreas([*areas.history, later])
    assert areas.level_of("310115", T0 + timedelta(days=2)) == "high"
    assert areas.level_of("310104", T0 + timedelta(days=2)) == "medium"
    # Once the high-risk period ends, the older province-wide entry speaks again.
    assert areas.level_of("310115", T0 + timedelta(days=16)) == "medium"
    assert len(areas.history) == 2


def test_the_policy_picks_measure_and_plan_by_risk_and_source() -> None:
    def measure(risk: int, source: int, areas: RiskAreas | None = None) -> tuple[str, str]:
        d = decide(
            POLICY, areas or RiskAreas(), region_code="310115", reported_risk=risk,
            source=source, at=T0,
        )  # fmt: skip
        return d.measure_id, d.plan_id

    feed, own = common_pb2.REPORT_SOURCE_HEALTH_CODE_FEED, common_pb2.REPORT_SOURCE_SELF_REPORT
    assert measure(common_pb2.RISK_LEVEL_HIGH, own) == ("home_quarantine_14d", "urgent")
    assert measure(common_pb2.RISK_LEVEL_MEDIUM, feed) == ("home_monitoring_7d", "urgent")
    assert measure(common_pb2.RISK_LEVEL_MEDIUM, own) == ("home_monitoring_7d", "monitor")
    assert measure(common_pb2.RISK_LEVEL_UNSPECIFIED, own) == ("report_only", "light")
    listed = RiskAreas([_area("310115", "high", T0)])
    assert measure(common_pb2.RISK_LEVEL_LOW, own, listed) == ("home_quarantine_14d", "urgent")
    assert POLICY.measures["home_quarantine_14d"].test_days == [1, 4, 7, 14]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("plan: urgent}", "plan: nowhere}"), "no plan 'nowhere'"),
        (("test_days: [1, 7]", "test_days: [1, 9]"), "within the 7 days"),
        (("- {risk: low, measure: report_only, plan: light}", ""), "no rule for any source"),
        (('"20:00"]', '"8pm"]'), "not HH:MM"),
        (("version: gaolan-2022-01", "versoin: x"), "version"),
    ],
)
def test_a_bad_policy_file_is_refused_saying_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    bundled = Path(__file__).parents[2] / "services" / "assignment" / "policy.yaml"
    text = bundled.read_text(encoding="utf-8")
    assert change[0] in text
    bad = tmp_path / "policy.yaml"
    bad.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_policy(bad)


@pytest.fixture(scope="module")
def county() -> Directory:
    generated = demo_county.generate()
    return Directory(generated.nodes, generated.people, generated.groups, generated.micro_grids)


def _green_checkpoint_arrival(report_id: str) -> events_pb2.ReportAccepted:
    """A green-code checkpoint scan of someone arriving from Shanghai, as intake publishes it."""
    report = accepted(
        report_id,
        source=common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN,
        risk=common_pb2.RISK_LEVEL_LOW,
        person=f"k-{report_id}",
    )
    report.arrived_at.FromDatetime(T0)
    return report


def test_a_green_checkpoint_arrival_is_placed_on_its_household_with_light_follow_up(
    county: Directory,
) -> None:
    report = _green_checkpoint_arrival("r-green")
    decided = decide(
        POLICY, RiskAreas(), region_code=report.origin_region_code,
        reported_risk=report.origin_risk, source=report.source, at=T0,
    )  # fmt: skip
    assert (decided.risk, decided.measure_id, decided.plan_id) == ("low", "report_only", "light")
    placed = place(report, county, now=T0, links=LINKS, decision=decided)
    task = placed.task
    assert not placed.triage
    assert task.household_id == HOUSEHOLD
    assert task.decided_risk == common_pb2.RISK_LEVEL_LOW
    assert (task.follow_up.plan_id, task.follow_up.verify_within_hours) == ("light", 24)
    assert not task.follow_up.home_visit and not task.follow_up.check_in_times
    assert placed.notification.recipient.person_id == task.assignee.person_id


async def test_a_green_checkpoint_arrival_through_the_consumer_makes_a_task(
    county: Directory, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path)
    out = Recorder()
    handler = report_handler(Current(county), LINKS, CadreLoad(), POLICY)
    report = _green_checkpoint_arrival("r-green-consumed")
    async with (
        Database(settings, "assignment", storage.TABLES) as db,
        Outbox(db, out, settings) as outbox,  # type: ignore[arg-type]
    ):
        async with db.session() as session:
            await handler(Envelope(report.report_id, report.person_key, report), session)
        await outbox.drained()
        async with db.session() as session:
            stored = await storage.get_placement(session, report.report_id)
    [task] = out.of(topics.TASKS, report.report_id)
    assert isinstance(task, events_pb2.TaskEvent)
    assert task.kind == events_pb2.TASK_EVENT_KIND_ASSIGNED
    assert (task.household_id, task.follow_up.plan_id) == (HOUSEHOLD, "light")
    assert out.of(topics.NOTIFICATIONS, report.report_id)
    assert stored is not None
    assert (stored.node_id, stored.triage, stored.risk) == (HOUSEHOLD, False, task.decided_risk)
    assert stored.measure_id == "report_only"
