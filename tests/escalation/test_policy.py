"""The deadline configuration: the shipped file, the default plan, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridline.contracts.v1 import common_pb2
from services.escalation.policy import PolicyError, load_policy

SHIPPED = Path(__file__).parents[2] / "services/escalation/deadlines.yaml"
AT = datetime(2026, 1, 20, tzinfo=UTC)
LIAISON, COMMUNITY, TOWNSHIP, COUNTY = (
    common_pb2.CHAIN_LEVEL_LIAISON, common_pb2.CHAIN_LEVEL_COMMUNITY,
    common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE, common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
)  # fmt: skip


def test_the_shipped_high_risk_plan_is_the_issue_s_example() -> None:
    policy = load_policy(SHIPPED, timedelta(minutes=30))
    steps = policy.steps(common_pb2.RISK_LEVEL_HIGH)
    assert [(s.after, s.levels, s.immediate) for s in steps] == [
        (timedelta(0), (COMMUNITY,), True),
        (timedelta(minutes=30), (LIAISON, COMMUNITY), False),
        (timedelta(hours=2), (TOWNSHIP,), False),
        (timedelta(hours=4), (COUNTY,), False),
    ]
    assert policy.deadline(common_pb2.RISK_LEVEL_HIGH, 0, AT) == AT
    assert policy.deadline(common_pb2.RISK_LEVEL_HIGH, 4, AT) is None
    # An unspecified risk is treated as medium.
    assert policy.steps(common_pb2.RISK_LEVEL_UNSPECIFIED) == policy.steps(
        common_pb2.RISK_LEVEL_MEDIUM
    )


def test_without_a_file_each_level_follows_after_the_ack_deadline() -> None:
    policy = load_policy(None, timedelta(seconds=90))
    steps = policy.steps(common_pb2.RISK_LEVEL_HIGH)
    assert [(s.after.total_seconds(), s.levels) for s in steps] == [
        (90, (LIAISON,)), (180, (COMMUNITY,)), (270, (TOWNSHIP,)), (360, (COUNTY,)),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("high: [", "not valid YAML"),
        ("low: {steps: [{after_minutes: 5, notify: [liaison]}]}", "medium\n  Field required"),
        (
            "{low: &p {steps: [{after_minutes: 5, notify: [mayor]}]}, medium: *p, high: *p}",
            "notify.0\n  Input should be 'liaison', 'community', 'township_office'",
        ),
        (
            "{low: &p {steps: [{after_minutes: 60, notify: [liaison]},"
            " {after_minutes: 30, notify: [community]}]}, medium: *p, high: *p}",
            "strictly increasing after_minutes",
        ),
        (
            "{low: &p {steps: [{after_minutes: 0, notify: [liaison]}]}, medium: *p, high: *p}",
            "after_minutes\n  Input should be greater than 0",
        ),
    ],
)
def test_a_faulty_file_is_refused_naming_the_fault(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "deadlines.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=str(path)) as refused:
        load_policy(path, timedelta(minutes=30))
    assert message in str(refused.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml", timedelta(minutes=30))
