"""Each level's daily picture (每日情况): one line per node below, side by side, and their total.

The county sees its townships, a township its communities, a community its grids. Each line
holds the arrivals of the span by origin risk, and where those tasks stand now (placed on a
household, under a measure, ended, overdue); the daily zero-reports its grids filed over those
due; the visit rate (入户率) and the share of arrivals cadres found door to door, from the
visit records and report sources exactly as the zero-report summaries count them
(`zero_reports.Summary`), never typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gridline.contracts.v1 import common_pb2
from services.escalation.office_reads import TaskCounts
from services.escalation.visits import percent
from services.escalation.zero_reports import Records, Summary

# Origin risks in the order the picture shows them, with their words; 0: not decided yet.
RISKS: tuple[tuple[int, str], ...] = (
    (common_pb2.RISK_LEVEL_HIGH, "高风险"),
    (common_pb2.RISK_LEVEL_MEDIUM, "中风险"),
    (common_pb2.RISK_LEVEL_LOW, "低风险"),
    (common_pb2.RISK_LEVEL_UNSPECIFIED, "未定"),
)


@dataclass(frozen=True, slots=True)
class Below:
    """A node one level below, and the grids under it."""

    node_id: str
    name: str
    grid_ids: tuple[str, ...]


@dataclass
class Line:
    """One node's picture of a span (or the total of the lines)."""

    node_id: str
    name: str
    by_risk: dict[int, int] = field(default_factory=dict)
    placed: int = 0
    under_measure: int = 0
    ended: int = 0
    overdue: int = 0
    reports_filed: int = 0
    reports_due: int = 0
    summary: Summary = field(default_factory=lambda: Summary(common_pb2.Responsible()))

    @property
    def arrivals(self) -> int:
        """Every arrival of the span."""
        return sum(self.by_risk.values())

    @property
    def compliance(self) -> float | None:
        """Zero-reports filed over those due; None when none were due."""
        return self.reports_filed / self.reports_due if self.reports_due else None

    @property
    def visit_rate(self) -> float | None:
        """入户率: households reached over the households of its grids."""
        return self.summary.visit_rate

    @property
    def cadre_share(self) -> float | None:
        """The share of the span's arrivals cadres found door to door."""
        return self.summary.cadre_share

    def risk(self, level: int) -> int:
        """The arrivals from areas of one risk."""
        return self.by_risk.get(level, 0)


def lines_of(
    below: Sequence[Below],
    counts: Mapping[str, TaskCounts],
    records: Mapping[str, Records],
    households: Mapping[str, int] | None,
    filed: Mapping[str, int],
    days: int,
) -> list[Line]:
    """A line per node below, then their total (its `node_id` empty), from the tasks counted
    by node, each grid's records, households (None: unknown) and zero-reports filed, over a span
    of `days` days."""
    lines = []
    for node in below:
        counted = counts.get(node.node_id, TaskCounts({}))
        line = Line(node.node_id, node.name, dict(counted.by_risk), counted.placed,
                    counted.under_measure, counted.ended, counted.overdue)  # fmt: skip
        for grid_id in node.grid_ids:
            _add_grid(line.summary, records.get(grid_id, Records()), households, grid_id)
            line.reports_filed += filed.get(grid_id, 0)
        line.reports_due = len(node.grid_ids) * days
        lines.append(line)
    return [*lines, total_of(lines)]


def _add_grid(
    summary: Summary, records: Records, households: Mapping[str, int] | None, grid_id: str
) -> None:
    # As `zero_reports.roll_up` sums a grid into its offices: one unknown count leaves the
    # rate unknown rather than wrong.
    summary.expected += 1
    summary.records += records
    if summary.households is not None:
        count = None if households is None else households.get(grid_id)
        summary.households = None if count is None else summary.households + count


def total_of(lines: Sequence[Line]) -> Line:
    """The sum of the lines (合计)."""
    total = Line("", "合计")
    for line in lines:
        for level, count in line.by_risk.items():
            total.by_risk[level] = total.by_risk.get(level, 0) + count
        total.placed += line.placed
        total.under_measure += line.under_measure
        total.ended += line.ended
        total.overdue += line.overdue
        total.reports_filed += line.reports_filed
        total.reports_due += line.reports_due
        total.summary.expected += line.summary.expected
        total.summary.records += line.summary.records
        if total.summary.households is not None:
            households = line.summary.households
            total.summary.households = (
                None if households is None else total.summary.households + households
            )
    return total


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart: its label, its parts (value, colour class) and its length in %."""

    label: str
    parts: tuple[tuple[int, str, float], ...]
    caption: str


def arrival_bars(lines: Sequence[Line]) -> list[Bar]:
    """The arrivals of each node below as a bar stacked by origin risk, scaled to the largest."""
    nodes = [line for line in lines if line.node_id]
    largest = max((line.arrivals for line in nodes), default=0) or 1
    classes: dict[int, str] = {
        common_pb2.RISK_LEVEL_HIGH: "high",
        common_pb2.RISK_LEVEL_MEDIUM: "medium",
        common_pb2.RISK_LEVEL_LOW: "low",
        common_pb2.RISK_LEVEL_UNSPECIFIED: "none",
    }
    return [
        Bar(
            line.name,
            tuple(
                (line.risk(level), classes[level], 100 * line.risk(level) / largest)
                for level, _ in RISKS
                if line.risk(level)
            ),
            f"{line.arrivals}人",
        )
        for line in nodes
    ]


def share_bars(lines: Sequence[Line], which: str) -> list[Bar]:
    """A bar per node below of one share (`visit_rate`, `cadre_share`, `compliance`), in %."""
    bars = []
    for line in (line for line in lines if line.node_id):
        share: float | None = getattr(line, which)
        length = 0.0 if share is None else min(100.0, 100 * share)
        bars.append(Bar(line.name, ((0, "share", length),), percent(share)))
    return bars
