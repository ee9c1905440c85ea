"""Gathering a level's daily picture: the nodes below from the Directory, the counts from the
records (`picture` puts them side by side).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Protocol

from gridline.contracts.v1 import directory_pb2
from gridline.db import Database
from gridline.staff.roles import Level
from gridline.timestamps import SHANGHAI
from services.escalation import office_reads
from services.escalation.picture import Below, Line, lines_of
from services.escalation.register_flows import Scope
from services.escalation.zero_report_flows import records_of_days
from services.escalation.zero_reports import Schedule

# The level below each level, the Directory's kind of it, and the task column it is on.
BELOW: dict[Level, tuple[str, str]] = {
    Level.COUNTY: ("township", "township_id"),
    Level.TOWNSHIP: ("community", "community_id"),
    Level.COMMUNITY: ("grid", "grid_id"),
    Level.GRID: ("grid", "grid_id"),
}


class NodeLister(Protocol):
    """The Directory's ListNodes (`DirectoryClient.nodes`)."""

    def __call__(
        self, node_ids: Iterable[str] = (), *, under_node_id: str = "", kind: str = ""
    ) -> Awaitable[list[directory_pb2.NodeInfo]]:
        """The nodes named, then those of `kind` under a node."""
        ...


async def nodes_below(nodes: NodeLister, level: Level, node_id: str) -> list[Below]:
    """The nodes one level below a node of `level`, each with the grids under it (a grid: the
    grid itself), by name."""
    if level is Level.GRID:
        own = await nodes([node_id])
        return [Below(node_id, own[0].name if own else node_id, (node_id,))]
    kind, _ = BELOW[level]
    children = await nodes(under_node_id=node_id, kind=kind)
    if kind == "grid":
        return [Below(c.node_id, c.name, (c.node_id,)) for c in children]
    grids = await nodes(under_node_id=node_id, kind="grid")
    parent = {g.node_id: g.parent_id for g in grids}
    if kind == "township":
        communities = await nodes(under_node_id=node_id, kind="community")
        township_of = {c.node_id: c.parent_id for c in communities}
        parent = {grid_id: township_of.get(above, "") for grid_id, above in parent.items()}
    under: dict[str, list[str]] = {c.node_id: [] for c in children}
    for grid_id, above in parent.items():
        if above in under:
            under[above].append(grid_id)
    return [Below(c.node_id, c.name, tuple(sorted(under[c.node_id]))) for c in children]


async def picture_lines(
    db: Database,
    schedule: Schedule,
    scope: Scope,
    group: str,
    below: list[Below],
    households: Mapping[str, int] | None,
    start: date,
    end: date,
    moment: datetime,
) -> list[Line]:
    """The picture of the days `start` to `end` (both included): a line per node below, grouped
    on the task column `group`, and their total."""
    start_at = datetime.combine(start, time(0), SHANGHAI)
    end_at = datetime.combine(end + timedelta(days=1), time(0), SHANGHAI)
    grid_ids = [g for node in below for g in node.grid_ids]
    async with db.session() as session:
        counts = await office_reads.task_counts(
            session, scope.field, scope.node_id, group, start_at, end_at, moment
        )
        records = await records_of_days(session, schedule, start, end)
        filed = await office_reads.zero_reports_filed(
            session, grid_ids, start.isoformat(), end.isoformat()
        )
    return lines_of(below, counts, records, households, filed, (end - start).days + 1)
