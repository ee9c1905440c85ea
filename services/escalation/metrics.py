"""Escalation's metrics, declared once."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from gridline.contracts.enums import chain_level_label
from gridline.contracts.v1 import common_pb2

TASKS_OPENED = Counter(
    "gridline_escalation_tasks_opened_total",
    "Tasks stored, by kind: household or triage.",
    ["kind"],
)
TASK_CHANGES = Counter(
    "gridline_escalation_task_changes_total",
    "Changes applied to tasks, by action (acknowledge, record_visit, ...).",
    ["action"],
)
# `township` on the follow-up metrics: the township of the task's grid, named as its chain says
# (`township_label`). Bounded by the directory: a county has tens of townships.
ESCALATIONS = Counter(
    "gridline_escalation_escalations_total",
    "Escalations raised, by the chain level they went to (level_label), reason and township.",
    ["level", "reason", "township"],
)
# No grid label: a county has thousands of grids and the grid id comes from the request, so
# per-grid series would be unbounded. Which grids missed a day is in the zero_report table and
# in the notices sent to their offices.
ZERO_REPORTS = Counter(
    "gridline_escalation_zero_reports_total",
    "Daily zero-reports by outcome: on_time, late, or missing (one per grid) at the due time.",
    ["outcome"],
)
ACKNOWLEDGEMENTS = Counter(
    "gridline_escalation_acknowledgements_total",
    "Acknowledged tasks by deadline compliance: on_time (before the first deadline) or late.",
    ["outcome"],
)
# Outcomes start at zero, so compliance ratios have a denominator before the first event.
for _outcome in ("on_time", "late"):
    ACKNOWLEDGEMENTS.labels(_outcome)
    ZERO_REPORTS.labels(_outcome)
ZERO_REPORTS.labels("missing")
# A task counted here holds no one up: the others fire, it is tried again later (deadlines.py).
DEADLINES_SET_ASIDE = Counter(
    "gridline_escalation_deadlines_set_aside_total",
    "Due deadline steps that could not be fired and were set aside for a later try, by "
    "reason: node_unknown (not in the directory), lookup_failed, fire_failed.",
    ["reason"],
)
for _reason in ("node_unknown", "lookup_failed", "fire_failed"):
    DEADLINES_SET_ASIDE.labels(_reason)
# Every replica counts the same table, so dashboards take the max over instances, not the sum.
OPEN_TASKS = Gauge(
    "gridline_escalation_open_tasks",
    "Tasks not yet closed (all replicas), by the level they reached, their age and township.",
    ["level", "age", "township"],
)
OVERDUE_TASKS = Gauge(
    "gridline_escalation_overdue_tasks",
    "Tasks still awaiting acknowledgement past their first deadline (all replicas), by township.",
    ["township"],
)

# The township of a chain without a township office (or of a grid not looked up yet).
UNKNOWN_TOWNSHIP = "unknown"

# The `level` label of every metric by chain level: cadre, liaison, community, ...
level_label = chain_level_label

# Upper bounds of the age buckets of OPEN_TASKS, in hours.
AGE_BUCKETS = ((1, "lt_1h"), (4, "1h_4h"), (24, "4h_24h"), (72, "1d_3d"))


def age_bucket(hours: float) -> str:
    """The OPEN_TASKS age label of an age in hours."""
    return next((label for bound, label in AGE_BUCKETS if hours < bound), "gt_3d")


def township_label(chain: Iterable[common_pb2.Responsible]) -> str:
    """The `township` label of a chain: the name of its township office's group.

    The chain is what escalation knows of a task's place (Directory.GetChain), and each
    township of the directory has its office and group (e.g. 石洞镇联防联控办), so the name
    is readable on a dashboard and as bounded as the townships are.
    """
    for responsible in chain:
        if responsible.level == common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE:
            return responsible.group_name or responsible.group_id or UNKNOWN_TOWNSHIP
    return UNKNOWN_TOWNSHIP


def record_open_tasks(counts: dict[tuple[int, str, str], int], overdue: dict[str, int]) -> None:
    """Replace the open-task gauges with fresh counts by (level, age label, township) and of
    overdue tasks by township."""
    OPEN_TASKS.clear()
    for (level, age, township), count in counts.items():
        OPEN_TASKS.labels(level_label(level), age, township).set(count)
    OVERDUE_TASKS.clear()
    for township, count in overdue.items():
        OVERDUE_TASKS.labels(township).set(count)
