"""Escalation's rules: task states, the next level of the chain, and what an escalation says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.ids import derived_id
from gridline.timestamps import to_timestamp

LEVEL_NAMES = {
    common_pb2.CHAIN_LEVEL_CADRE: "包户干部",
    common_pb2.CHAIN_LEVEL_LIAISON: "联络员",
    common_pb2.CHAIN_LEVEL_COMMUNITY: "社区",
    common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE: "镇联防联控办",
    common_pb2.CHAIN_LEVEL_COUNTY_OFFICE: "县联防联控办",
}


class TaskState(StrEnum):
    """Where a task is in its life."""

    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"


class TransitionRefused(Exception):
    """A change the task's current state does not allow."""

    def __init__(self, action: str, state: str) -> None:
        super().__init__(f"cannot {action} a task that is {state}")
        self.action = action
        self.state = state


def acknowledge(state: str) -> TaskState:
    """The state after an acknowledgement, or TransitionRefused naming the current state."""
    if state != TaskState.ASSIGNED:
        raise TransitionRefused("acknowledge", state)
    return TaskState.ACKNOWLEDGED


def next_level(
    chain: list[common_pb2.Responsible], current: int
) -> tuple[common_pb2.Responsible, bool] | None:
    """The first level above `current` and whether any level remains above it."""
    above = [r for r in chain if r.level > current]
    if not above:
        return None
    return above[0], len(above) > 1


@dataclass(frozen=True)
class OverdueTask:
    """What escalation needs to know of a task that missed its deadline."""

    task_id: str
    report_id: str
    grid_id: str
    level: int
    summary: str
    link: str
    report_accepted_at: datetime


def escalation_for(
    task: OverdueTask, recipient: common_pb2.Responsible, now: datetime
) -> tuple[events_pb2.EscalationRaised, events_pb2.Notification]:
    """The escalation event and its notice; ids derive from task and level, so replays match."""
    missed_by = LEVEL_NAMES.get(task.level, "上一级")
    reason = f"{missed_by}未在时限内确认接收"
    escalation = events_pb2.EscalationRaised(
        escalation_id=derived_id("escalation", task.task_id, str(recipient.level)),
        task_id=task.task_id,
        level=recipient.level,
        reason=reason,
        grid_id=task.grid_id,
        recipient=recipient,
        raised_at=to_timestamp(now),
    )
    notice = events_pb2.Notification(
        notification_id=derived_id("notice", task.task_id, "escalated", recipient.group_id),
        kind=events_pb2.NOTIFICATION_KIND_ESCALATION,
        recipient=recipient,
        title=f"逾期未处置上报：{reason}",
        body=f"{task.summary}。{reason}，请{LEVEL_NAMES.get(recipient.level, '')}督促处置。",
        task_id=task.task_id,
        report_id=task.report_id,
        link=task.link,
        created_at=to_timestamp(now),
        report_accepted_at=to_timestamp(task.report_accepted_at),
    )
    return escalation, notice
