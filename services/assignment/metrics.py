"""Assignment's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PLACEMENTS = Counter(
    "gridline_assignment_placements_total",
    "Reports placed, by outcome: on a household, or to community triage.",
    ["outcome"],
)
REPORTS_MERGED = Counter(
    "gridline_assignment_reports_merged_total",
    "Reports of a person whose case was open, joined to it instead of opening a task, by source.",
    ["source"],
)
DIRECTORY_NODES = Gauge(
    "gridline_assignment_directory_nodes", "Grid nodes in the loaded directory."
)
