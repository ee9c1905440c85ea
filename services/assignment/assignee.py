"""Who takes a placed report: the household's cadre, their backup, or the least loaded colleague."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from services.assignment.directory import Directory, Link, Person, Role
from services.assignment.grid import NodeKind


@dataclass(frozen=True, slots=True)
class Choice:
    """The chosen first level of the chain and why it was chosen."""

    link: Link
    reason: str


class CadreLoad:
    """Open tasks of each cadre: handed out by placement, closed when tasks.v1 says completed."""

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self._counts: Counter[str] = Counter(counts or {})

    def add(self, person_id: str, count: int = 1) -> None:
        """More tasks for this person (one unless told)."""
        self._counts[person_id] += count

    def done(self, person_id: str) -> None:
        """One task of this person completed."""
        if self._counts[person_id] > 0:
            self._counts[person_id] -= 1

    def of(self, person_id: str) -> int:
        """How many open tasks this person has."""
        return self._counts[person_id]


class PendingLoad(CadreLoad):
    """The committed load with the tasks a transaction hands out on top, until it commits.

    Reports placed in one transaction see each other's tasks, as they would one by one, while
    the committed load only grows by them once the transaction is kept (`commit`).
    """

    def __init__(self, committed: CadreLoad) -> None:
        super().__init__()
        self._committed = committed

    def of(self, person_id: str) -> int:
        """Open tasks of this person, the pending ones included."""
        return self._committed.of(person_id) + super().of(person_id)

    def commit(self) -> None:
        """Add the pending tasks to the committed load."""
        for person_id, count in self._counts.items():
            self._committed.add(person_id, count)
        self._counts.clear()


def _link(directory: Directory, person: Person) -> Link:
    return Link(role=Role.CADRE, person=person, group=directory.groups[person.group_id])


def choose(directory: Directory, node_id: str, load: CadreLoad) -> Choice:
    """The first level for a node: the unit's cadre; on leave, the backup; else the grid's
    least loaded cadre on duty. Above the units (triage) the chain's lowest level takes it."""
    node = directory.nodes[node_id]
    unit = directory.ancestor(node_id, NodeKind.UNIT)
    grid = directory.ancestor(node_id, NodeKind.GRID)
    on_duty = [c for c in directory.grid_cadres(grid.id) if not c.on_leave] if grid else []
    if unit is not None and unit.responsible_id:
        cadre = directory.people[unit.responsible_id]
        if not cadre.on_leave:
            return Choice(_link(directory, cadre), "cadre")
        backup = directory.people.get(cadre.backup_id or "")
        if backup is not None and not backup.on_leave:
            return Choice(_link(directory, backup), "backup")
    elif node.kind is NodeKind.BUILDING:
        # A building's own cadres come before the rest of the grid.
        units = {u.responsible_id for u in directory.children(node_id)}
        own = [c for c in on_duty if c.id in units]
        on_duty = own or on_duty
    if on_duty and node.kind in (NodeKind.HOUSEHOLD, NodeKind.UNIT, NodeKind.BUILDING):
        least = min(on_duty, key=lambda c: (load.of(c.id), c.id))
        return Choice(_link(directory, least), "least loaded in grid")
    return Choice(directory.chain(node_id)[0], "chain")
