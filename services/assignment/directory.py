"""The grid directory as plain objects: nodes of the grid, people, groups, chains, resolution."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from enum import StrEnum

from services.assignment.address_index import AddressIndex, Resolution
from services.assignment.grid import Node, NodeKind


class Role(StrEnum):
    """Who a person is in the chain."""

    CADRE = "cadre"
    LIAISON = "liaison"
    COMMUNITY_STAFF = "community_staff"
    TOWNSHIP_OFFICE = "township_office"
    COUNTY_OFFICE = "county_office"
    MICRO_GRID_LEADER = "micro_grid_leader"


# The node kind whose responsible person holds each chain role, bottom to top.
CHAIN_ROLES: tuple[tuple[Role, NodeKind], ...] = (
    (Role.CADRE, NodeKind.UNIT),
    (Role.LIAISON, NodeKind.GRID),
    (Role.COMMUNITY_STAFF, NodeKind.COMMUNITY),
    (Role.TOWNSHIP_OFFICE, NodeKind.TOWNSHIP),
    (Role.COUNTY_OFFICE, NodeKind.COUNTY),
)


@dataclass(frozen=True, slots=True)
class Person:
    """A cadre, liaison, office or micro-grid leader, and the chat group that reaches them.

    A cadre on leave takes no new tasks; their backup (another cadre) takes them instead.
    """

    id: str
    name: str
    role: Role
    phone: str
    group_id: str
    chat_id: str = ""
    on_leave: bool = False
    backup_id: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """A chat group the chain reaches. How it is reached (its robot, SMS) is configured in
    notify's groups file alone, keyed by this id."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class MicroGrid:
    """Three to five neighbouring households and their leader (四邻联防联保小组, 联户长)."""

    id: str
    name: str
    leader_id: str


@dataclass(frozen=True, slots=True)
class Link:
    """One level of a chain: the role, the person and their group."""

    role: Role
    person: Person
    group: Group


class Directory:
    """The loaded directory: lookups by id and address, chains up the grid."""

    def __init__(
        self,
        nodes: list[Node],
        people: list[Person],
        groups: list[Group],
        micro_grids: list[MicroGrid] | None = None,
    ) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.people = {p.id: p for p in people}
        self.groups = {g.id: g for g in groups}
        self.micro_grids = {m.id: m for m in micro_grids or ()}
        self._index = AddressIndex(self.nodes)
        # The cadres serving each grid, for handing work to the least loaded one.
        cadres: dict[str, set[str]] = defaultdict(set)
        self._children: dict[str, list[str]] = defaultdict(list)
        for node in self.nodes.values():
            if node.parent_id:
                self._children[node.parent_id].append(node.id)
            if node.kind is NodeKind.UNIT and node.responsible_id:
                grid = self.ancestor(node.id, NodeKind.GRID)
                if grid is not None:
                    cadres[grid.id].add(node.responsible_id)
        self._grid_cadres = {grid: sorted(ids) for grid, ids in cadres.items()}

    def __len__(self) -> int:
        return len(self.nodes)

    def locate(self, address: str) -> Resolution:
        """Where an address lands: household, else unit or building, else triage with candidates."""
        return self._index.resolve(address)

    def resolve(self, address: str) -> Node | None:
        """The household at this address, if the address reaches one."""
        return self.locate(address).household

    def children(self, node_id: str) -> list[Node]:
        """The nodes directly below this one."""
        return [self.nodes[c] for c in self._children.get(node_id, [])]

    def grid_cadres(self, grid_id: str) -> list[Person]:
        """The cadres of a grid's units."""
        return [self.people[p] for p in self._grid_cadres.get(grid_id, [])]

    def cadre_grids(self) -> dict[str, list[str]]:
        """Each cadre and the grids whose units they serve."""
        grids: dict[str, list[str]] = defaultdict(list)
        for grid_id, cadre_ids in self._grid_cadres.items():
            for cadre_id in cadre_ids:
                grids[cadre_id].append(grid_id)
        return dict(grids)

    def grid_households(self) -> dict[str, int]:
        """Every grid and the number of households in it, empty grids included."""
        counts = dict.fromkeys((n.id for n in self.nodes.values() if n.kind is NodeKind.GRID), 0)
        for node in self.nodes.values():
            if node.kind is NodeKind.HOUSEHOLD:
                grid = self.ancestor(node.id, NodeKind.GRID)
                if grid is not None:
                    counts[grid.id] += 1
        return counts

    def micro_grid_leader(self, household_id: str) -> Person | None:
        """The leader of the household's micro-grid, if it has one."""
        micro_grid = self.micro_grids.get(self.nodes[household_id].micro_grid_id or "")
        return self.people.get(micro_grid.leader_id) if micro_grid else None

    def duty_changed(self, person_id: str, *, on_leave: bool, backup_id: str | None) -> Person:
        """A cadre on leave (with a backup cadre) or back on duty; checked, not yet applied."""
        person = self.people[person_id]
        if person.role is not Role.CADRE:
            raise ValueError(f"{person_id} is a {person.role.value}, not a cadre")
        if backup_id is not None:
            backup = self.people.get(backup_id)
            if backup is None or backup.role is not Role.CADRE or backup_id == person_id:
                raise ValueError(f"backup {backup_id!r} is not another cadre")
        return replace(person, on_leave=on_leave, backup_id=backup_id)

    def put_person(self, person: Person) -> None:
        """Replace a person's entry (after it was stored)."""
        self.people[person.id] = person

    def ancestors(self, node_id: str) -> list[Node]:
        """The nodes above this one, nearest first."""
        found: list[Node] = []
        node = self.nodes.get(node_id)
        while node is not None and node.parent_id:
            node = self.nodes.get(node.parent_id)
            if node is not None:
                found.append(node)
        return found

    def ancestor(self, node_id: str, kind: NodeKind) -> Node | None:
        """The node itself or its nearest ancestor of the given kind."""
        node = self.nodes.get(node_id)
        while node is not None and node.kind is not kind:
            node = self.nodes.get(node.parent_id) if node.parent_id else None
        return node

    def chain(self, node_id: str) -> list[Link]:
        """The responsible people from the lowest level covering the node up to the county."""
        if node_id not in self.nodes:
            raise KeyError(node_id)
        links: list[Link] = []
        for role, kind in CHAIN_ROLES:
            holder = self.ancestor(node_id, kind)
            if holder is None or holder.responsible_id is None:
                continue
            person = self.people[holder.responsible_id]
            links.append(Link(role=role, person=person, group=self.groups[person.group_id]))
        return links
