"""Risk areas with history and the policy file, without Kafka or HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridline.contracts.v1 import common_pb2
from services.assignment.risk import RiskArea, RiskAreas, decide, load_policy
from tests.assignment.support import POLICY

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
