"""Re-planning a task's deadlines when its risk is raised: the rule alone, no Kafka, no database."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest

from gridline.contracts.v1 import common_pb2
from services.escalation import replanning
from services.escalation.policy import Step, load_policy
from tests.escalation.conftest import START, new_task

SHIPPED = load_policy(
    Path(__file__).parents[2] / "services/escalation/deadlines.yaml", timedelta(minutes=30)
)
LOW, MEDIUM, HIGH = (
    common_pb2.RISK_LEVEL_LOW,
    common_pb2.RISK_LEVEL_MEDIUM,
    common_pb2.RISK_LEVEL_HIGH,
)
LIAISON = common_pb2.CHAIN_LEVEL_LIAISON
COMMUNITY = common_pb2.CHAIN_LEVEL_COMMUNITY
TOWNSHIP = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
COUNTY = common_pb2.CHAIN_LEVEL_COUNTY_OFFICE


def at(minutes: float, *levels: int, immediate: bool = False) -> Step:
    return Step(timedelta(minutes=minutes), levels, immediate)


def test_a_medium_task_raised_to_high_before_its_first_deadline() -> None:
    plan = replanning.replan(
        SHIPPED.steps(MEDIUM), 0, SHIPPED.steps(HIGH), since=timedelta(minutes=110), awaiting=True
    )
    assert plan == [
        at(110, COMMUNITY, immediate=True),  # at once, as for a new high-risk task
        at(120, LIAISON),  # the medium plan told the liaison sooner: kept
        at(140, LIAISON, COMMUNITY),
        at(230, TOWNSHIP),  # sooner than the medium plan's 480: that one is dropped
        at(350, COUNTY),
    ]


def test_steps_already_taken_stay_in_front() -> None:
    medium = SHIPPED.steps(MEDIUM)
    plan = replanning.replan(
        medium, 2, SHIPPED.steps(HIGH), since=timedelta(minutes=300), awaiting=True
    )
    assert plan[:2] == medium[:2]
    assert plan[2:] == [
        at(300, COMMUNITY, immediate=True),
        at(330, LIAISON, COMMUNITY),
        at(420, TOWNSHIP),
        at(540, COUNTY),
    ]


def test_an_old_step_already_due_is_kept_unless_the_new_plan_tells_its_levels_as_soon() -> None:
    # The watcher had not yet fired the low plan's liaison step (due at 240) when the raise came.
    plan = replanning.replan(
        SHIPPED.steps(LOW), 0, SHIPPED.steps(MEDIUM), since=timedelta(minutes=245), awaiting=True
    )
    assert plan[0] == at(240, LIAISON)
    assert at(720, COMMUNITY) not in plan  # the medium plan tells the community at 485


@pytest.mark.parametrize(
    ("old", "new", "since", "step"),
    [
        (old, new, since, step)
        for old, new in ((LOW, MEDIUM), (LOW, HIGH), (MEDIUM, HIGH))
        for since, step in itertools.product((0, 10, 119, 125, 239, 500, 2000), range(4))
        if step <= len(SHIPPED.steps(old))
    ],
)
def test_a_raise_never_loosens_and_applies_the_whole_higher_plan(
    old: int, new: int, since: int, step: int
) -> None:
    before = SHIPPED.steps(old)
    offset = timedelta(minutes=since)
    plan = replanning.replan(before, step, SHIPPED.steps(new), since=offset, awaiting=True)

    assert plan[:step] == before[:step]
    ahead = plan[step:]
    assert [s.after for s in ahead] == sorted(s.after for s in ahead)
    for higher in SHIPPED.steps(new):
        assert Step(offset + higher.after, higher.levels, higher.immediate) in ahead
    for old_step in before[step:]:
        # Each of its levels is told no later than the old plan would have told it.
        for level in old_step.levels:
            assert any(level in s.levels and s.after <= old_step.after for s in ahead)


def test_an_acknowledged_task_only_goes_up_at_once_and_gets_no_deadline() -> None:
    medium = SHIPPED.steps(MEDIUM)
    since = timedelta(minutes=50)
    to_high = replanning.replan(medium, 1, SHIPPED.steps(HIGH), since=since, awaiting=False)
    assert to_high == [medium[0], at(50, COMMUNITY, immediate=True)]
    # The medium plan goes up at no moment of its own: nothing is added.
    to_medium = replanning.replan(
        SHIPPED.steps(LOW), 0, SHIPPED.steps(MEDIUM), since=since, awaiting=False
    )
    assert to_medium == []


@pytest.mark.parametrize(
    ("current", "new", "higher"),
    [
        (LOW, MEDIUM, True),
        (LOW, HIGH, True),
        (MEDIUM, HIGH, True),
        (HIGH, HIGH, False),
        (HIGH, LOW, False),
        (MEDIUM, MEDIUM, False),
        (common_pb2.RISK_LEVEL_UNSPECIFIED, MEDIUM, False),  # planned as medium already
        (common_pb2.RISK_LEVEL_UNSPECIFIED, HIGH, True),
        (LOW, common_pb2.RISK_LEVEL_UNSPECIFIED, False),
    ],
)
def test_only_a_known_higher_risk_raises(current: int, new: int, higher: bool) -> None:
    assert replanning.raises(current, new) is higher


def test_a_task_follows_its_own_plan_once_re_planned() -> None:
    task = new_task(SHIPPED, START, origin_risk=MEDIUM)
    assert replanning.plan_of(SHIPPED, task) == SHIPPED.steps(MEDIUM)
    plan = [at(0, LIAISON), at(110, COMMUNITY, immediate=True), at(120.5, LIAISON, COMMUNITY)]
    task.plan = replanning.encode(plan)
    assert replanning.plan_of(SHIPPED, task) == plan
    assert replanning.due_at(plan, 2, START) == START + timedelta(minutes=120.5)
    assert replanning.due_at(plan, 3, START) is None
    assert replanning.first_deadline(plan[1:], START) == START + timedelta(minutes=120.5)
    assert replanning.first_deadline(plan[1:2], START) is None
