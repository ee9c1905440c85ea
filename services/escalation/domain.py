"""Escalation's rules: the task lifecycle, the next level of the chain, what an escalation says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridline.contracts.enums import CHAIN_LEVEL_ZH
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.ids import derived_id
from gridline.timestamps import to_timestamp


class TaskState(StrEnum):
    """Where a task is in its life."""

    TRIAGE = "triage"  # the address matched no household: the community places it
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    VISITED = "visited"
    UNDER_CONTROL = "under_control"  # home quarantine or home health monitoring
    CLOSED = "closed"


class Action(StrEnum):
    """What people (or other systems) do to a task."""

    ACKNOWLEDGE = "acknowledge"
    RECORD_VISIT = "record_visit"
    START_MEASURE = "start_measure"
    END_MEASURE = "end_measure"
    CLOSE = "close"
    SEND_TO_TRIAGE = "send_to_triage"
    REASSIGN = "reassign"


class Measure(StrEnum):
    """The control measure a person is under."""

    QUARANTINE = "quarantine"
    MONITORING = "monitoring"


# Which states each action is allowed from, and where it leads.
TRANSITIONS: dict[Action, tuple[frozenset[TaskState], TaskState]] = {
    Action.ACKNOWLEDGE: (frozenset({TaskState.ASSIGNED}), TaskState.ACKNOWLEDGED),
    Action.RECORD_VISIT: (frozenset({TaskState.ACKNOWLEDGED}), TaskState.VISITED),
    Action.START_MEASURE: (frozenset({TaskState.VISITED}), TaskState.UNDER_CONTROL),
    Action.END_MEASURE: (frozenset({TaskState.UNDER_CONTROL}), TaskState.CLOSED),
    # Visited and no measure needed, or a triage task that was no arrival at all.
    Action.CLOSE: (frozenset({TaskState.VISITED, TaskState.TRIAGE}), TaskState.CLOSED),
    # The cadre found the address is not in their care: back to the community.
    Action.SEND_TO_TRIAGE: (
        frozenset({TaskState.ASSIGNED, TaskState.ACKNOWLEDGED}),
        TaskState.TRIAGE,
    ),
    Action.REASSIGN: (
        frozenset({TaskState.TRIAGE, TaskState.ASSIGNED, TaskState.ACKNOWLEDGED}),
        TaskState.ASSIGNED,
    ),
}

# States in which nobody has taken the task yet: its acknowledgement deadline runs.
AWAITING_ACKNOWLEDGEMENT = frozenset({TaskState.TRIAGE, TaskState.ASSIGNED})

# A later report of the person raising the task's risk is nobody's action on the task: it moves
# no state and is offered by no page, so it is no Action. It is a row of the audit trail.
RISK_RAISE = "raise_risk"


def takes_risk_raise(state: str) -> bool:
    """Whether a raised risk changes a task in this state: any but closed (never reopened)."""
    return state != TaskState.CLOSED


ACTION_LABELS = {
    Action.ACKNOWLEDGE: "确认接收",
    Action.RECORD_VISIT: "记录入户核查",
    Action.START_MEASURE: "开始管控措施",
    Action.END_MEASURE: "解除管控措施",
    Action.CLOSE: "办结",
    Action.SEND_TO_TRIAGE: "退回社区分拣",
    Action.REASSIGN: "改派",
}

# Looked up by a stored task's state, which is the plain string of its TaskState.
STATE_LABELS: dict[str, str] = {
    TaskState.TRIAGE: "待分拣",
    TaskState.ASSIGNED: "待接收",
    TaskState.ACKNOWLEDGED: "已接收",
    TaskState.VISITED: "已入户核查",
    TaskState.UNDER_CONTROL: "管控中",
    TaskState.CLOSED: "已办结",
}


class TransitionRefused(Exception):
    """A change the task's current state does not allow."""

    def __init__(self, action: str, state: str) -> None:
        super().__init__(f"cannot {action} a task that is {state}")
        self.action = action
        self.state = state


class MeasureRequired(ValueError):
    """Starting a measure needs its kind: quarantine or monitoring."""


def transition(state: str, action: Action) -> TaskState:
    """The state after `action`, or TransitionRefused naming the current state."""
    allowed_from, target = TRANSITIONS[action]
    if state not in allowed_from:
        raise TransitionRefused(action.value, state)
    return target


def allowed_actions(state: str) -> list[Action]:
    """The actions the current state allows, in lifecycle order."""
    return [action for action, (sources, _) in TRANSITIONS.items() if state in sources]


def acknowledge(state: str) -> TaskState:
    """The state after an acknowledgement, or TransitionRefused naming the current state."""
    return transition(state, Action.ACKNOWLEDGE)


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
    level: int  # the level the task was assigned to
    summary: str
    link: str
    report_accepted_at: datetime


HIGH_RISK_REASON = "高风险地区来返人员，立即上报"


def overdue_reason(assignee_level: int) -> str:
    """Why a task went up at a deadline: its assignee did not acknowledge it in time."""
    return f"{CHAIN_LEVEL_ZH.get(assignee_level, '上一级')}未在时限内确认接收"


def recipients_for(
    chain: list[common_pb2.Responsible], levels: tuple[int, ...], assignee_level: int
) -> list[common_pb2.Responsible]:
    """The chain's responsibles at `levels` above the assignee; absent levels are skipped."""
    return [r for r in chain if r.level in levels and r.level > assignee_level]


def escalation_for(
    task: OverdueTask,
    recipient: common_pb2.Responsible,
    now: datetime,
    *,
    reason: str | None = None,
    round_key: str = "",
) -> tuple[events_pb2.EscalationRaised, events_pb2.Notification]:
    """The escalation event and its notice.

    Ids derive from the task, the assignment round (`round_key`) and the recipient's level, so a
    replay yields the same ids and a reassigned task can go up again.
    """
    reason = reason or overdue_reason(task.level)
    parts = (task.task_id, round_key, str(recipient.level)) if round_key else (
        task.task_id, str(recipient.level)
    )  # fmt: skip
    escalation = events_pb2.EscalationRaised(
        escalation_id=derived_id("escalation", *parts),
        task_id=task.task_id,
        level=recipient.level,
        reason=reason,
        grid_id=task.grid_id,
        recipient=recipient,
        raised_at=to_timestamp(now),
    )
    notice = build_notice(
        derived_id("notice", *parts[:-1], "escalated", recipient.group_id),
        events_pb2.NOTIFICATION_KIND_ESCALATION,
        recipient,
        title=f"逾期未处置上报：{reason}" if reason != HIGH_RISK_REASON else reason,
        body=f"{task.summary}。{reason}，请{CHAIN_LEVEL_ZH.get(recipient.level, '')}督促处置。",
        at=now,
        about=task,
    )
    return escalation, notice
