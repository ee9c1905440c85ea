"""Assignment's metrics, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from services.assignment.directory import Directory, Role

# `township`: the township of the placed node, named as escalation names it (the group of the
# chain's township office, e.g. 石洞镇联防联控办), so placements and follow-up line up by
# township. Bounded by the directory: a county has tens of townships.
PLACEMENTS = Counter(
    "gridline_assignment_placements_total",
    "Reports placed, by outcome (on a household, or to community triage) and township.",
    ["outcome", "township"],
)
REPORTS_MERGED = Counter(
    "gridline_assignment_reports_merged_total",
    "Reports of a person whose case was open, joined to it instead of opening a task, by source.",
    ["source"],
)
DIRECTORY_NODES = Gauge(
    "gridline_assignment_directory_nodes", "Grid nodes in the loaded directory."
)

# A node outside the directory (or above every township) has no township.
UNKNOWN_TOWNSHIP = "unknown"


def township_label(directory: Directory, node_id: str) -> str:
    """The `township` label of a node: the name of its township office's group."""
    try:
        chain = directory.chain(node_id)
    except KeyError:
        return UNKNOWN_TOWNSHIP
    office = next((link for link in chain if link.role is Role.TOWNSHIP_OFFICE), None)
    return office.group.name or office.group.id if office else UNKNOWN_TOWNSHIP
