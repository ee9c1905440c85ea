"""Making a register (台账): a node's tasks from escalation, their persons from assignment.

Escalation owns the tasks (state, risk, measure and dates, tests, visits); assignment owns the
person and what the person asking may see of them (`PersonSource`: one call for every row,
masked or in clear, audited there). The arrival day is the person's, so the tasks read are
those reported since the first day, and the rows kept those that arrived in the span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time

from gridline.contracts.v1 import directory_pb2
from gridline.db import Database
from gridline.timestamps import SHANGHAI, from_timestamp
from services.escalation import office_reads
from services.escalation.register import Person, Row, arrived_in, check_span, rows_of

# The persons of some reports (by report id), as assignment lists them for the person asking.
PersonSource = Callable[[Collection[str]], Awaitable[Mapping[str, Person]]]


@dataclass(frozen=True, slots=True)
class Scope:
    """The node a register or picture is for: its level's place column and id (None: the
    whole county)."""

    field: str
    node_id: str | None


async def register_rows(
    db: Database,
    persons: PersonSource,
    scope: Scope,
    start: date,
    end: date,
    *,
    measures_only: bool = False,
) -> list[Row]:
    """The register of the arrivals under a node from `start` to `end` (both included, Beijing
    time), earliest first; RegisterRefused for a span it does not cover."""
    check_span(start, end)
    since = datetime.combine(start, time(0), SHANGHAI)
    async with db.session() as session:
        tasks = await office_reads.register_tasks(
            session, scope.field, scope.node_id, since, measures_only=measures_only
        )
        visited = await office_reads.first_visits(session, scope.field, scope.node_id, since)
        tests = await office_reads.tests_of(session, scope.field, scope.node_id, since)
    listed = await persons([t.report_id for t in tasks]) if tasks else {}
    kept = [t for t in tasks if arrived_in(listed.get(t.report_id), t, start, end)]
    return rows_of(kept, listed, visited, tests)


def person_of(person: directory_pb2.Person) -> Person:
    """A person of assignment's ListPersons answer."""
    return Person(
        name=person.name,
        id_number=person.id_number,
        phone=person.phone,
        revealed=person.revealed,
        origin_name=person.origin_name,
        arrived_at=from_timestamp(person.arrived_at) if person.HasField("arrived_at") else None,
        address=person.address,
        transport=person.transport,
        cadre_name=person.cadre_name,
        place_name=person.place_name,
    )
