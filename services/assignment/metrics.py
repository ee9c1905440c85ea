"""Assignment's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PLACEMENTS = Counter(
    "gridline_assignment_placements_total",
    "Reports placed, by outcome: on a household, or to community triage.",
    ["outcome"],
)
DIRECTORY_NODES = Gauge(
    "gridline_assignment_directory_nodes", "Grid nodes in the loaded directory."
)
