"""The task lifecycle as a state machine: every transition and every refused one."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from gridline.contracts.v1 import common_pb2
from services.escalation.domain import (
    ENDED,
    TRANSITIONS,
    Action,
    ChangeRefused,
    TaskState,
    TestResult,
    TransitionRefused,
    allowed_actions,
    check_change,
    transition,
)

CADRE = common_pb2.CHAIN_LEVEL_CADRE

FOLLOWED_FROM_ACKNOWLEDGED = (
    TaskState.ACKNOWLEDGED,
    TaskState.VISITED,
    TaskState.UNDER_CONTROL,
    TaskState.END_REQUESTED,
)
TRANSFERABLE = (
    TaskState.VISITED,
    TaskState.UNDER_CONTROL,
    TaskState.END_REQUESTED,
    TaskState.TRANSFER,
)

# The lifecycle written out by hand, so that a change to TRANSITIONS has to be made twice.
EXPECTED = {
    (TaskState.ASSIGNED, Action.ACKNOWLEDGE): TaskState.ACKNOWLEDGED,
    (TaskState.ACKNOWLEDGED, Action.RECORD_VISIT): TaskState.VISITED,
    (TaskState.VISITED, Action.START_MEASURE): TaskState.UNDER_CONTROL,
    (TaskState.UNDER_CONTROL, Action.END_MEASURE): TaskState.CLOSED,
    (TaskState.VISITED, Action.CLOSE): TaskState.CLOSED,
    (TaskState.TRIAGE, Action.CLOSE): TaskState.CLOSED,
    (TaskState.ASSIGNED, Action.SEND_TO_TRIAGE): TaskState.TRIAGE,
    (TaskState.ACKNOWLEDGED, Action.SEND_TO_TRIAGE): TaskState.TRIAGE,
    (TaskState.TRIAGE, Action.REASSIGN): TaskState.ASSIGNED,
    (TaskState.ASSIGNED, Action.REASSIGN): TaskState.ASSIGNED,
    (TaskState.ACKNOWLEDGED, Action.REASSIGN): TaskState.ASSIGNED,
    (TaskState.NOT_FOUND, Action.REASSIGN): TaskState.ASSIGNED,
    # Ending a measure early: asked, then approved or refused by the township office.
    (TaskState.UNDER_CONTROL, Action.REQUEST_EARLY_END): TaskState.END_REQUESTED,
    (TaskState.END_REQUESTED, Action.APPROVE_EARLY_END): TaskState.CLOSED,
    (TaskState.END_REQUESTED, Action.REFUSE_EARLY_END): TaskState.UNDER_CONTROL,
    # A test during the measure (the target is a positive one's).
    # A positive test before or without a measure goes to transfer as well.
    (TaskState.ACKNOWLEDGED, Action.RECORD_TEST): TaskState.TRANSFER,
    (TaskState.VISITED, Action.RECORD_TEST): TaskState.TRANSFER,
    (TaskState.UNDER_CONTROL, Action.RECORD_TEST): TaskState.TRANSFER,
    (TaskState.END_REQUESTED, Action.RECORD_TEST): TaskState.TRANSFER,
    # The other ends of a case.
    (TaskState.ACKNOWLEDGED, Action.RECORD_NOT_FOUND): TaskState.NOT_FOUND,
    **{(state, Action.RECORD_LEFT): TaskState.LEFT for state in FOLLOWED_FROM_ACKNOWLEDGED},
    **{(state, Action.TO_HOSPITAL): TaskState.HOSPITAL for state in TRANSFERABLE},
    **{(state, Action.TO_ISOLATION): TaskState.ISOLATION for state in TRANSFERABLE},
}

ALL_PAIRS = list(itertools.product(TaskState, Action))


@pytest.mark.parametrize(("state", "action"), list(EXPECTED))
def test_allowed_transition(state: TaskState, action: Action) -> None:
    result = TestResult.POSITIVE if action is Action.RECORD_TEST else None
    assert transition(state, action, result) is EXPECTED[(state, action)]
    assert action in allowed_actions(state)


@pytest.mark.parametrize(("state", "action"), [pair for pair in ALL_PAIRS if pair not in EXPECTED])
def test_refused_transition_names_the_current_state(state: TaskState, action: Action) -> None:
    with pytest.raises(TransitionRefused) as refused:
        transition(state, action)
    assert str(refused.value) == f"cannot {action.value} a task that is {state.value}"
    assert refused.value.state == state
    assert action not in allowed_actions(state)


def test_the_table_holds_exactly_the_expected_lifecycle() -> None:
    table = {
        (state, action): target
        for action, (sources, target) in TRANSITIONS.items()
        for state in sources
    }
    assert table == EXPECTED


def test_an_ended_case_allows_nothing() -> None:
    for state in ENDED:
        assert allowed_actions(state) == []


def test_a_test_result_other_than_positive_keeps_the_measure() -> None:
    for result in (TestResult.NEGATIVE, TestResult.NOT_TAKEN):
        assert transition(TaskState.UNDER_CONTROL, Action.RECORD_TEST, result) is (
            TaskState.UNDER_CONTROL
        )
    with pytest.raises(ChangeRefused, match="须注明结果"):
        transition(TaskState.UNDER_CONTROL, Action.RECORD_TEST)


def test_early_ends_need_a_reason_and_the_township_or_above() -> None:
    ends = datetime(2026, 2, 3, tzinfo=UTC)
    before, after = ends - timedelta(days=2), ends + timedelta(minutes=1)

    def check(action: Action, note: str = "", authority: int = 0, at: datetime = before) -> None:
        check_change(action, note=note, authority=authority, ends_at=ends, moment=at)

    with pytest.raises(ChangeRefused, match=r"管控期至2月3日 08:00，尚未期满"):
        check(Action.END_MEASURE)
    check(Action.END_MEASURE, at=after)
    with pytest.raises(ChangeRefused, match="须说明理由"):
        check(Action.REQUEST_EARLY_END, note="  ")
    check(Action.REQUEST_EARLY_END, note="经医院确诊为误报", authority=CADRE)
    for action in (Action.APPROVE_EARLY_END, Action.REFUSE_EARLY_END):
        for level in (CADRE, common_pb2.CHAIN_LEVEL_COMMUNITY):
            with pytest.raises(ChangeRefused, match="须由镇联防联控办或县联防联控办审批"):
                check(action, authority=level)
        check(action, authority=common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE)
        check(action, authority=common_pb2.CHAIN_LEVEL_COUNTY_OFFICE)
    # An office that asked is confirmed by another person; it may withdraw (refuse) its own.
    office = common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
    with pytest.raises(ChangeRefused, match="本人提出的提前解除申请须由另一位"):
        check_change(Action.APPROVE_EARLY_END, note="", authority=office, ends_at=ends,
                     moment=before, actor="李强（镇联防联控办，p-1）",
                     requested_by="李强（镇联防联控办，p-1）")  # fmt: skip
    check_change(Action.APPROVE_EARLY_END, note="", authority=office, ends_at=ends,
                 moment=before, actor="王芳（镇联防联控办，p-2）",
                 requested_by="李强（镇联防联控办，p-1）")  # fmt: skip
    # Nobody below the township is offered the decision.
    assert Action.APPROVE_EARLY_END not in allowed_actions(TaskState.END_REQUESTED, authority=CADRE)
    assert Action.APPROVE_EARLY_END in allowed_actions(
        TaskState.END_REQUESTED, authority=common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
    )
    with pytest.raises(ChangeRefused, match="须注明去向"):
        check(Action.RECORD_LEFT)


def test_the_whole_way_from_assignment_to_closure() -> None:
    state = TaskState.ASSIGNED
    for action in (
        Action.ACKNOWLEDGE,
        Action.RECORD_VISIT,
        Action.START_MEASURE,
        Action.END_MEASURE,
    ):
        state = transition(state, action)
    assert state is TaskState.CLOSED
