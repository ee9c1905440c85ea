"""Escalation's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
ESCALATIONS = Counter(
    "gridline_escalation_escalations_total",
    "Escalations raised, by the chain level they went to (ChainLevel number) and reason.",
    ["level", "reason"],
)
ZERO_REPORTS = Counter(
    "gridline_escalation_zero_reports_total",
    "Daily zero-reports by grid and outcome: on_time, late, or missing at the due time.",
    ["grid", "outcome"],
)
ACKNOWLEDGEMENTS = Counter(
    "gridline_escalation_acknowledgements_total",
    "Acknowledged tasks by deadline compliance: on_time (before the first deadline) or late.",
    ["outcome"],
)
OPEN_TASKS = Gauge(
    "gridline_escalation_open_tasks",
    "Tasks not yet closed, by the level they reached and their age since assignment.",
    ["level", "age"],
)

# Upper bounds of the age buckets of OPEN_TASKS, in hours.
AGE_BUCKETS = ((1, "lt_1h"), (4, "1h_4h"), (24, "4h_24h"), (72, "1d_3d"))


def age_bucket(hours: float) -> str:
    """The OPEN_TASKS age label of an age in hours."""
    return next((label for bound, label in AGE_BUCKETS if hours < bound), "gt_3d")


def record_open_tasks(counts: dict[tuple[int, str], int]) -> None:
    """Replace the open-task gauge with fresh counts by (level, age label)."""
    OPEN_TASKS.clear()
    for (level, age), count in counts.items():
        OPEN_TASKS.labels(str(level), age).set(count)
