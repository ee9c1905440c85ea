"""Escalation's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter

TASKS_OPENED = Counter(
    "gridline_escalation_tasks_opened_total",
    "Tasks stored, by kind: household or triage.",
    ["kind"],
)
TASKS_ACKNOWLEDGED = Counter(
    "gridline_escalation_tasks_acknowledged_total", "Tasks acknowledged by their assignee."
)
ESCALATIONS = Counter(
    "gridline_escalation_escalations_total",
    "Escalations raised, by the chain level they went to (ChainLevel number).",
    ["level"],
)
