"""The grid directory as plain objects: nodes of the grid, people, groups, chains, resolution."""

from __future__ import annotations

import re
import unicodedata
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


class Role(StrEnum):
    """Who a person is in the chain."""

    CADRE = "cadre"
    LIAISON = "liaison"
    COMMUNITY_STAFF = "community_staff"
    TOWNSHIP_OFFICE = "township_office"
    COUNTY_OFFICE = "county_office"


# The node kind whose responsible person holds each chain role, bottom to top.
CHAIN_ROLES: tuple[tuple[Role, NodeKind], ...] = (
    (Role.CADRE, NodeKind.UNIT),
    (Role.LIAISON, NodeKind.GRID),
    (Role.COMMUNITY_STAFF, NodeKind.COMMUNITY),
    (Role.TOWNSHIP_OFFICE, NodeKind.TOWNSHIP),
    (Role.COUNTY_OFFICE, NodeKind.COUNTY),
)


@dataclass(frozen=True, slots=True)
class Node:
    """One place of the grid. Households carry their canonical address."""

    id: str
    kind: NodeKind
    name: str
    parent_id: str | None
    responsible_id: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    """A cadre, liaison or office, and the chat group that reaches them."""

    id: str
    name: str
    role: Role
    phone: str
    group_id: str


@dataclass(frozen=True, slots=True)
class Group:
    """A chat group (the robot settings come with the notify channels)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Link:
    """One level of a chain: the role, the person and their group."""

    role: Role
    person: Person
    group: Group


_SPACES = re.compile(r"\s+")


def normalise_address(address: str, prefixes: tuple[str, ...] = ()) -> str:
    """The comparable form of an address: NFKC, no spaces, known leading place names dropped."""
    text = _SPACES.sub("", unicodedata.normalize("NFKC", address))
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if prefix and text.startswith(prefix):
                text = text[len(prefix) :]
                changed = True
    return text


class Directory:
    """The loaded directory: lookups by id and address, chains up the grid."""

    def __init__(self, nodes: list[Node], people: list[Person], groups: list[Group]) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.people = {p.id: p for p in people}
        self.groups = {g.id: g for g in groups}
        # Leading place names people write before the compound (province, city, county, town).
        self._prefixes = tuple(
            sorted(
                {"甘肃省", "兰州市"}
                | {n.name for n in nodes if n.kind in (NodeKind.COUNTY, NodeKind.TOWNSHIP)},
                key=len,
                reverse=True,
            )
        )
        self._by_address = {
            normalise_address(n.address, self._prefixes): n
            for n in nodes
            if n.kind is NodeKind.HOUSEHOLD and n.address
        }
        self._communities = [n for n in nodes if n.kind is NodeKind.COMMUNITY]

    def __len__(self) -> int:
        return len(self.nodes)

    def resolve(self, address: str) -> Node | None:
        """The household at exactly this address, if any."""
        return self._by_address.get(normalise_address(address, self._prefixes))

    def triage_node(self, address: str) -> Node:
        """Where an unplaceable address goes: the community it names, else the township."""
        text = normalise_address(address, self._prefixes)
        for community in self._communities:
            if community.name in text:
                return community
        townships = [n for n in self.nodes.values() if n.kind is NodeKind.TOWNSHIP]
        return townships[0]

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
