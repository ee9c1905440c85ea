"""Where a node sits on the grid, as staff scope sees it (`gridline.staff.identity.Place`)."""

from __future__ import annotations

from gridline.staff.identity import Place
from services.assignment.directory import Directory
from services.assignment.grid import NodeKind


def place_of(directory: Directory, node_id: str) -> Place:
    """The township, community and grid `node_id` is in (itself when it is one); empty for a
    node the directory lacks."""

    def up(kind: NodeKind) -> str:
        found = directory.ancestor(node_id, kind)
        return found.id if found else ""

    return Place(
        township_id=up(NodeKind.TOWNSHIP),
        community_id=up(NodeKind.COMMUNITY),
        grid_id=up(NodeKind.GRID),
    )
