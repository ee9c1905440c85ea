"""The places of the grid, county down to household."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NodeKind(StrEnum):
    """Levels of the grid, county down to household."""

    COUNTY = "county"
    TOWNSHIP = "township"
    COMMUNITY = "community"
    GRID = "grid"
    BUILDING = "building"
    UNIT = "unit"
    HOUSEHOLD = "household"


@dataclass(frozen=True, slots=True)
class Node:
    """One place of the grid. Households carry their canonical address."""

    id: str
    kind: NodeKind
    name: str
    parent_id: str | None
    responsible_id: str | None = None
    address: str | None = None
    aliases: tuple[str, ...] = ()
    micro_grid_id: str | None = None
