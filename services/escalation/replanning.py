"""A task's plan of deadlines, and re-planning it when a later report raises its risk.

A task's plan is the list of steps its deadlines walk through (how long after the assignment,
which levels, why); `Task.step` is the next one. Until a risk is raised it is the policy's plan of
the task's origin risk. When a later report of the person decides a higher risk, the steps ahead
are re-planned: the higher risk's plan counted from the raise, and of the old steps ahead those
that tell some level sooner than that plan does. Nothing is loosened: every old step ahead either
stays or a new step tells all its levels no later. Steps already taken stay in front, so step
numbers (and the escalation ids derived from them) never repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from gridline.contracts.v1 import common_pb2
from services.escalation import storage
from services.escalation.policy import DeadlinePolicy, Step

_RANKS: dict[int, int] = {
    common_pb2.RISK_LEVEL_LOW: 1,
    common_pb2.RISK_LEVEL_MEDIUM: 2,
    common_pb2.RISK_LEVEL_HIGH: 3,
}


def raises(current: int, new: int) -> bool:
    """Whether `new` is a known risk above `current` (unspecified counts as medium, as its plan)."""
    if new not in _RANKS:
        return False
    return _RANKS[new] > _RANKS.get(current, _RANKS[common_pb2.RISK_LEVEL_MEDIUM])


def replan(
    plan: Sequence[Step],
    step: int,
    higher: Sequence[Step],
    *,
    since: timedelta,
    awaiting: bool,
) -> list[Step]:
    """The plan after the risk rose `since` after the assignment; `higher` is the new risk's plan.

    `step` is the next step of `plan`. While the task awaits acknowledgement, the steps ahead are
    `higher` counted from the raise plus each old step ahead that tells a level sooner. Once it
    was acknowledged no deadline runs: only `higher`'s immediate steps are added, since a
    high-risk origin goes up the chain at once whoever holds the task.
    """
    new = [replace(s, after=since + s.after) for s in higher if awaiting or s.immediate]
    kept = [s for s in plan[step:] if awaiting and not _covered(s, new)]
    # Stable: at the same moment the new risk's step comes first.
    return [*plan[:step], *sorted([*new, *kept], key=lambda s: s.after)]


def _covered(old: Step, new: Sequence[Step]) -> bool:
    """Whether every level `old` tells is told no later by a step of `new`."""
    return all(any(level in s.levels and s.after <= old.after for s in new) for level in old.levels)


def plan_of(policy: DeadlinePolicy, task: storage.Task) -> list[Step]:
    """The task's plan: its own once re-planned, else the policy's for its origin risk."""
    if task.plan is None:
        return policy.steps(task.origin_risk)
    return [
        Step(timedelta(seconds=raw["after_seconds"]), tuple(raw["levels"]), bool(raw["immediate"]))
        for raw in task.plan
    ]


def encode(plan: Sequence[Step]) -> list[dict[str, Any]]:
    """The plan as `Task.plan` stores it (JSON)."""
    return [
        {
            "after_seconds": step.after.total_seconds(),
            "levels": list(step.levels),
            "immediate": step.immediate,
        }
        for step in plan
    ]


def due_at(plan: Sequence[Step], index: int, assigned_at: datetime) -> datetime | None:
    """When step `index` falls due, or None when no step remains."""
    return assigned_at + plan[index].after if index < len(plan) else None


def first_deadline(plan: Sequence[Step], assigned_at: datetime) -> datetime | None:
    """The first acknowledgement deadline (immediate steps are no deadline to meet)."""
    return next((assigned_at + s.after for s in plan if not s.immediate), None)
