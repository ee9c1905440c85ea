"""Escalation's rules without Kafka or a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridline.contracts.v1 import common_pb2
from services.escalation.domain import (
    RISK_RAISE,
    Action,
    OverdueTask,
    TaskState,
    TransitionRefused,
    acknowledge,
    allowed_actions,
    escalation_for,
    next_level,
    takes_risk_raise,
)

CHAIN = [
    common_pb2.Responsible(level=level, group_id=f"g{level}")
    for level in (
        common_pb2.CHAIN_LEVEL_CADRE,
        common_pb2.CHAIN_LEVEL_LIAISON,
        common_pb2.CHAIN_LEVEL_COMMUNITY,
        common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
        common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
    )
]


def test_next_level_is_the_one_above() -> None:
    step = next_level(CHAIN, common_pb2.CHAIN_LEVEL_CADRE)
    assert step is not None
    assert step[0].level == common_pb2.CHAIN_LEVEL_LIAISON
    assert step[1] is True
    top = next_level(CHAIN, common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE)
    assert top is not None and top[1] is False
    assert next_level(CHAIN, common_pb2.CHAIN_LEVEL_COUNTY_OFFICE) is None


def test_acknowledge_only_an_assigned_task() -> None:
    assert acknowledge(TaskState.ASSIGNED) is TaskState.ACKNOWLEDGED
    with pytest.raises(TransitionRefused, match="cannot acknowledge a task that is acknowledged"):
        acknowledge(TaskState.ACKNOWLEDGED)


def test_escalation_ids_repeat_for_the_same_task_and_level() -> None:
    task = OverdueTask(
        task_id="t1", report_id="r1", grid_id="g", level=common_pb2.CHAIN_LEVEL_CADRE,
        summary="王*", link="http://x/v1/tasks/t1", report_accepted_at=datetime.now(UTC),
    )  # fmt: skip
    first = escalation_for(task, CHAIN[1], datetime.now(UTC))
    again = escalation_for(task, CHAIN[1], datetime.now(UTC))
    higher = escalation_for(task, CHAIN[2], datetime.now(UTC))
    assert first[0].escalation_id == again[0].escalation_id != higher[0].escalation_id
    assert first[1].notification_id == again[1].notification_id
    assert first[1].recipient.group_id == "g2"
    assert "包户干部未在时限内确认接收" in first[0].reason


@pytest.mark.parametrize("state", list(TaskState))
def test_a_raised_risk_changes_every_task_but_an_ended_one(state: TaskState) -> None:
    ended = {TaskState.CLOSED, TaskState.LEFT, TaskState.HOSPITAL, TaskState.ISOLATION}
    assert takes_risk_raise(state) is (state not in ended)
    # No action of anyone's: no page offers it and it is no step of the lifecycle.
    assert RISK_RAISE not in {a.value for a in Action}
    assert RISK_RAISE not in allowed_actions(state)
