"""A small county for scope tests: two townships, three communities, a grid in each.

c (county)
├── t1 ─┬── cmA ── gA ── bA ─┬── uA  (cadre p-cadreA):  hA1, hA2
│       │                    └── uA2 (cadre p-cadreA2): hA3
│       └── cmB ── gB ── bB ──── uB  (cadre p-cadreB):  hB1
└── t2 ──── cmC ── gC ── bC ──── uC  (cadre p-cadreC):  hC1
"""

from __future__ import annotations

from dataclasses import dataclass

from gridline.staff.identity import Place
from services.assignment.directory import Directory, Group, Person, Role
from services.assignment.grid import Node, NodeKind


@dataclass(frozen=True)
class Spot:
    """A household and where it sits."""

    household: str
    place: Place
    cadre: str


A = Spot("hA1", Place("t1", "cmA", "gA"), "p-cadreA")
B = Spot("hB1", Place("t1", "cmB", "gB"), "p-cadreB")
C = Spot("hC1", Place("t2", "cmC", "gC"), "p-cadreC")


def county() -> Directory:
    """The directory of the county above, a chat group for each responsible person."""
    nodes = [Node("c", NodeKind.COUNTY, "皋兰县", None, "p-county")]
    people = {"p-county": Role.COUNTY_OFFICE}
    for township, communities in (("t1", ("A", "B")), ("t2", ("C",))):
        nodes.append(Node(township, NodeKind.TOWNSHIP, f"{township}镇", "c", f"p-{township}"))
        people[f"p-{township}"] = Role.TOWNSHIP_OFFICE
        for x in communities:
            grid, building = f"g{x}", f"b{x}"
            nodes += [
                Node(f"cm{x}", NodeKind.COMMUNITY, f"{x}社区", township, f"p-cm{x}"),
                Node(grid, NodeKind.GRID, f"{x}小区", f"cm{x}", f"p-l{x}"),
                Node(building, NodeKind.BUILDING, "1号楼", grid),
                Node(f"u{x}", NodeKind.UNIT, "1单元", building, f"p-cadre{x}"),
                Node(
                    f"h{x}1",
                    NodeKind.HOUSEHOLD,
                    "101室",
                    f"u{x}",
                    address=f"{x}小区1号楼1单元101室",
                ),
            ]
            people |= {f"p-cm{x}": Role.COMMUNITY_STAFF, f"p-l{x}": Role.LIAISON}
            people[f"p-cadre{x}"] = Role.CADRE
    nodes += [
        Node("hA2", NodeKind.HOUSEHOLD, "102室", "uA", address="A小区1号楼1单元102室"),
        Node("uA2", NodeKind.UNIT, "2单元", "bA", "p-cadreA2"),
        Node("hA3", NodeKind.HOUSEHOLD, "201室", "uA2", address="A小区1号楼2单元201室"),
    ]
    people["p-cadreA2"] = Role.CADRE
    return Directory(
        nodes,
        [
            Person(pid, pid, role, f"139{n:08d}", f"grp-{pid}")
            for n, (pid, role) in enumerate(people.items())
        ],
        [Group(f"grp-{pid}", f"{pid}群") for pid in people],
    )
