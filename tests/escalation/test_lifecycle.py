"""The task lifecycle as a state machine: every transition and every refused one."""

from __future__ import annotations

import itertools

import pytest

from services.escalation.domain import (
    TRANSITIONS,
    Action,
    TaskState,
    TransitionRefused,
    allowed_actions,
    transition,
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
}

ALL_PAIRS = list(itertools.product(TaskState, Action))


@pytest.mark.parametrize(("state", "action"), list(EXPECTED))
def test_allowed_transition(state: TaskState, action: Action) -> None:
    assert transition(state, action) is EXPECTED[(state, action)]
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


def test_a_closed_task_allows_nothing() -> None:
    assert allowed_actions(TaskState.CLOSED) == []


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
