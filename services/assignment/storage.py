"""Assignment's tables and the reads and writes on them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Row, Table, bindparam, event, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX_TABLES
from gridline.db import table_of, utc_timestamp
from gridline.timestamps import now
from services.assignment.cases import Case
from services.assignment.directory import Directory, Group, MicroGrid, Person, Role
from services.assignment.grid import Node, NodeKind
from services.assignment.risk import RiskArea, risk_name
from services.assignment.sealed import REVEAL_AUDIT, REVEAL_AUDIT_REPORT, SEALED_PERSON

_ALIAS_SEPARATOR = "|"


class DirectoryNode(SQLModel, table=True):
    """A place of the grid, county down to household."""

    __tablename__ = "directory_node"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16, index=True)
    name: str = Field(max_length=100)
    parent_id: str | None = Field(default=None, max_length=64, index=True)
    responsible_id: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=200)
    aliases: str = Field(default="", max_length=500)
    micro_grid_id: str | None = Field(default=None, max_length=64)


class DirectoryPerson(SQLModel, table=True):
    """A responsible person of the chain."""

    __tablename__ = "directory_person"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=64)
    role: str = Field(max_length=32)
    phone: str = Field(max_length=20)
    group_id: str = Field(max_length=64)
    chat_id: str = Field(default="", max_length=64)
    on_leave: bool = False
    backup_id: str | None = Field(default=None, max_length=64)


class DirectoryGroup(SQLModel, table=True):
    """A chat group (its robot is configured in notify's groups file, not here)."""

    __tablename__ = "directory_group"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)


class DirectoryMicroGrid(SQLModel, table=True):
    """Three to five neighbouring households and their leader."""

    __tablename__ = "directory_micro_grid"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    leader_id: str = Field(max_length=64)


class DirectoryVersion(SQLModel, table=True):
    """How many times each part that replicas hold in memory has changed: one row (its
    migration writes it), each count raised in the transaction of the change it counts."""

    __tablename__ = "directory_version"

    id: int = Field(default=1, primary_key=True)
    directory: int = 0  # imports: the whole directory
    duty: int = 0  # cadres' leave and backups
    risk_areas: int = 0


class Placement(SQLModel, table=True):
    """Where a report was placed and the task it became.

    A report that joined another report's case (`merged_into`) shares that case's task, place
    and assignee; only the report that opened a case counts as open work.
    """

    __tablename__ = "placement"

    report_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(max_length=64, index=True)
    # Intake's case of the person: the first report's id within its case window.
    case_id: str = Field(default="", max_length=64, index=True)
    merged_into: str = Field(default="", max_length=64)
    node_id: str = Field(max_length=64)
    grid_id: str = Field(default="", max_length=64)
    triage: bool
    assignee_id: str = Field(default="", max_length=64, index=True)
    # Who holds the case now: the assignee's group, then whoever tasks.v1 handed it to.
    holder_group_id: str = Field(default="", max_length=64)
    holder_level: int = 0
    risk: int = 0  # the decided risk, as a RiskLevel
    measure_id: str = Field(default="", max_length=64)
    policy_version: str = Field(default="", max_length=64)
    placed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_type=utc_timestamp(),
    )
    # Indexed for the retention, which purges cases closed longer ago than it.
    completed_at: datetime | None = Field(default=None, sa_type=utc_timestamp(), index=True)


class RiskAreaChange(SQLModel, table=True):
    """One change of a risk area, kept forever: the history of who was what risk, when."""

    __tablename__ = "risk_area_change"

    id: int | None = Field(default=None, primary_key=True)
    region_code: str = Field(max_length=12, index=True)
    level: str = Field(max_length=8)
    valid_from: datetime = Field(sa_type=utc_timestamp())
    valid_to: datetime | None = Field(default=None, sa_type=utc_timestamp())
    changed_at: datetime = Field(sa_type=utc_timestamp())


PLACEMENT: Table = table_of(Placement)
_NODE: Table = table_of(DirectoryNode)
_PERSON: Table = table_of(DirectoryPerson)
_GROUP: Table = table_of(DirectoryGroup)
_MICRO_GRID: Table = table_of(DirectoryMicroGrid)
_VERSION: Table = table_of(DirectoryVersion)
_RISK_AREA_CHANGE: Table = table_of(RiskAreaChange)
# This service's Alembic revisions (`gridline.db.Database` upgrades to the newest at start).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
    *OUTBOX_TABLES,
    _NODE,
    _PERSON,
    _GROUP,
    _MICRO_GRID,
    _VERSION,
    PLACEMENT,
    _RISK_AREA_CHANGE,
    SEALED_PERSON,
    REVEAL_AUDIT,
    REVEAL_AUDIT_REPORT,
]


@dataclass(frozen=True, slots=True)
class Versions:
    """The counts of `DirectoryVersion`: a part whose count moved has changed."""

    directory: int
    duty: int
    risk_areas: int


async def versions(session: AsyncSession) -> Versions:
    """How many times the directory, duty and risk areas have changed so far."""
    row = (
        await session.exec(select(_VERSION.c.directory, _VERSION.c.duty, _VERSION.c.risk_areas))
    ).one()
    return Versions(*row)


async def _bump(session: AsyncSession, part: Literal["directory", "duty", "risk_areas"]) -> None:
    """Count a change of `part`; it commits (or not) with the change itself."""
    await session.exec(update(_VERSION).values({part: _VERSION.c[part] + 1}))


async def directory_size(session: AsyncSession) -> int:
    """How many grid nodes are stored."""
    result = await session.exec(select(func.count()).select_from(DirectoryNode))
    return int(result.one())


async def replace_directory(session: AsyncSession, directory: Directory) -> None:
    """Store a whole directory in place of what was there (one transaction), counted as an
    import for the replicas to load."""
    for table in (_NODE, _PERSON, _GROUP, _MICRO_GRID):
        await session.exec(table.delete())
    groups = [{"id": g.id, "name": g.name} for g in directory.groups.values()]
    people = [
        {
            "id": p.id,
            "name": p.name,
            "role": p.role.value,
            "phone": p.phone,
            "group_id": p.group_id,
            "chat_id": p.chat_id,
            "on_leave": p.on_leave,
            "backup_id": p.backup_id,
        }
        for p in directory.people.values()
    ]
    micro_grids = [
        {"id": m.id, "name": m.name, "leader_id": m.leader_id}
        for m in directory.micro_grids.values()
    ]
    nodes = [
        {
            "id": n.id,
            "kind": n.kind.value,
            "name": n.name,
            "parent_id": n.parent_id,
            "responsible_id": n.responsible_id,
            "address": n.address,
            "aliases": _ALIAS_SEPARATOR.join(n.aliases),
            "micro_grid_id": n.micro_grid_id,
        }
        for n in directory.nodes.values()
    ]
    for table, values in (
        (_GROUP, groups),
        (_PERSON, people),
        (_MICRO_GRID, micro_grids),
        (_NODE, nodes),
    ):
        if values:
            # A core bulk insert: one statement per table, not one ORM object per row.
            await (await session.connection()).execute(insert(table), values)
    await _bump(session, "directory")


async def load_directory(session: AsyncSession) -> Directory:
    """The stored directory as domain objects.

    Only the rows are fetched on the event loop; the objects and the directory's indexes (about
    a second for 20,000 households) are built in a worker thread, so that a replica reloading
    the directory goes on placing reports meanwhile.
    """
    conn = await session.connection()
    nodes, people, groups, micro_grids = [
        (await conn.execute(table.select())).all()
        for table in (_NODE, _PERSON, _GROUP, _MICRO_GRID)
    ]
    return await asyncio.to_thread(_directory, nodes, people, groups, micro_grids)


def _directory(
    nodes: Sequence[Row[tuple[object, ...]]],
    people: Sequence[Row[tuple[object, ...]]],
    groups: Sequence[Row[tuple[object, ...]]],
    micro_grids: Sequence[Row[tuple[object, ...]]],
) -> Directory:
    return Directory(
        [
            Node(
                r.id,
                NodeKind(r.kind),
                r.name,
                r.parent_id,
                r.responsible_id,
                r.address,
                tuple(a for a in r.aliases.split(_ALIAS_SEPARATOR) if a),
                r.micro_grid_id,
            )
            for r in nodes
        ],
        [
            Person(
                r.id, r.name, Role(r.role), r.phone, r.group_id, r.chat_id, r.on_leave, r.backup_id
            )
            for r in people
        ],
        [Group(r.id, r.name) for r in groups],
        [MicroGrid(r.id, r.name, r.leader_id) for r in micro_grids],
    )


async def save_duty(session: AsyncSession, person: Person) -> None:
    """Store a cadre's duty state (on leave, backup), counted as a duty change."""
    await session.exec(
        update(_PERSON)
        .where(_PERSON.c.id == person.id)
        .values(on_leave=person.on_leave, backup_id=person.backup_id)
    )
    await _bump(session, "duty")


async def load_duty(session: AsyncSession) -> dict[str, tuple[bool, str | None]]:
    """Every person's duty state: on leave, and their backup."""
    rows = await session.exec(select(_PERSON.c.id, _PERSON.c.on_leave, _PERSON.c.backup_id))
    return {person_id: (on_leave, backup_id) for person_id, on_leave, backup_id in rows.all()}


async def open_counts(session: AsyncSession) -> dict[str, int]:
    """How many open cases each person holds (a case counts once, however many reports)."""
    await _write_unwritten(session)
    rows = await session.exec(
        select(Placement.assignee_id, func.count())
        .where(col(Placement.completed_at).is_(None), Placement.merged_into == "")
        .group_by(Placement.assignee_id)
    )
    return {assignee: int(count) for assignee, count in rows.all() if assignee}


# Placements are written in bulk when their transaction commits, not with a statement each: a
# consumer places hundreds of reports in one transaction. Until then the transaction keeps them,
# and the cases they opened or joined by case id, in `_Unwritten`. A case's rows all carry its
# case id, so `open_case` finds a case of the transaction there and any other in the database;
# every other function here that reads or changes placements writes them first.
_UNWRITTEN = "assignment.unwritten_placements"


@dataclass
class _Unwritten:
    """Placements of a transaction not written yet, and its cases by case id."""

    rows: list[dict[str, object]] = field(default_factory=list)
    cases: dict[str, Case] = field(default_factory=dict)


@event.listens_for(Session, "before_commit")
def _write_at_commit(session: Session) -> None:
    # Runs inside the commit, in the async session's greenlet: the sync API is the one to use.
    session.info.pop(_PREFETCHED, None)
    unwritten = session.info.pop(_UNWRITTEN, None)
    if unwritten is not None and unwritten.rows:
        session.connection().execute(insert(PLACEMENT), unwritten.rows)


@event.listens_for(Session, "after_rollback")
def _forget_at_rollback(session: Session) -> None:
    session.info.pop(_UNWRITTEN, None)
    session.info.pop(_PREFETCHED, None)


async def _write_unwritten(session: AsyncSession) -> None:
    """Write the transaction's placements now and forget its cases, which may change next."""
    session.info.pop(_PREFETCHED, None)
    unwritten = session.info.pop(_UNWRITTEN, None)
    if unwritten is not None and unwritten.rows:
        await session.exec(insert(PLACEMENT), params=unwritten.rows)


def _keep(
    session: AsyncSession, case: Case, *, report_id: str, case_id: str, merged_into: str, risk: int
) -> None:
    """Keep a report's placement in `case` for the commit; the case as it stands after it."""
    unwritten = session.info.get(_UNWRITTEN)
    if unwritten is None:
        unwritten = session.info[_UNWRITTEN] = _Unwritten()
    unwritten.rows.append(
        {
            "report_id": report_id,
            "task_id": case.task_id,
            "case_id": case_id,
            "merged_into": merged_into,
            "node_id": case.node_id,
            "grid_id": case.grid_id,
            "triage": case.triage,
            "assignee_id": case.assignee_id,
            "holder_group_id": case.holder_group_id,
            "holder_level": case.holder_level,
            "risk": risk,
            "measure_id": case.measure_id,
            "policy_version": case.policy_version,
            "placed_at": now(),
        }
    )
    unwritten.cases[case_id] = replace(case, risk=max(case.risk, risk))


def record_placement(
    session: AsyncSession,
    *,
    report_id: str,
    task_id: str,
    node_id: str,
    triage: bool,
    assignee_id: str,
    case_id: str = "",
    grid_id: str = "",
    holder_group_id: str = "",
    holder_level: int = 0,
    risk: int = 0,
    measure_id: str = "",
    policy_version: str = "",
) -> None:
    """Remember where a report went and who took it (commits with the consumer's transaction).

    The report opens a case: `case_id` (intake's, else the report's own id) finds it again.
    """
    case = Case(
        report_id=report_id,
        task_id=task_id,
        node_id=node_id,
        grid_id=grid_id,
        triage=triage,
        risk=risk,
        assignee_id=assignee_id,
        holder_group_id=holder_group_id,
        holder_level=holder_level,
        measure_id=measure_id,
        policy_version=policy_version,
    )
    _keep(
        session, case, report_id=report_id, case_id=case_id or report_id, merged_into="", risk=risk
    )


_JOINED = PLACEMENT.alias("joined")
# The open cases of some case ids, latest first, each one's risk the highest any of its reports
# decided.
_OPEN_CASES = (
    # SQLAlchemy's own select: SQLModel's is typed for at most four columns.
    sa_select(
        PLACEMENT.c.case_id,
        PLACEMENT.c.report_id,
        PLACEMENT.c.task_id,
        PLACEMENT.c.node_id,
        PLACEMENT.c.grid_id,
        PLACEMENT.c.triage,
        select(func.max(_JOINED.c.risk))
        .where(_JOINED.c.task_id == PLACEMENT.c.task_id)
        .scalar_subquery(),
        PLACEMENT.c.assignee_id,
        PLACEMENT.c.holder_group_id,
        PLACEMENT.c.holder_level,
        PLACEMENT.c.measure_id,
        PLACEMENT.c.policy_version,
    )
    .where(
        PLACEMENT.c.case_id.in_(bindparam("case_ids", expanding=True)),
        PLACEMENT.c.merged_into == "",
        PLACEMENT.c.completed_at.is_(None),
    )
    .order_by(PLACEMENT.c.placed_at.desc())
)
# Open cases read for a whole batch before its reports are handled, by case id (None: none).
_PREFETCHED = "assignment.prefetched_cases"


async def _read_open_cases(session: AsyncSession, case_ids: list[str]) -> dict[str, Case | None]:
    """The latest open case of each case id (None where there is none), in one query."""
    connection = await session.connection()
    found: dict[str, Case | None] = dict.fromkeys(case_ids)
    for row in await connection.execute(_OPEN_CASES, {"case_ids": case_ids}):
        case_id, report_id, task_id, node_id, grid_id, triage, risk, *holder = row
        if found[case_id] is not None:
            continue  # an older one: the latest came first
        assignee_id, holder_group_id, holder_level, measure_id, policy_version = holder
        found[case_id] = Case(
            report_id=report_id,
            task_id=task_id,
            node_id=node_id,
            grid_id=grid_id,
            triage=triage,
            risk=int(risk or 0),
            assignee_id=assignee_id,
            holder_group_id=holder_group_id,
            holder_level=holder_level,
            measure_id=measure_id,
            policy_version=policy_version,
        )
    return found


async def prefetch_open_cases(session: AsyncSession, case_ids: Sequence[str]) -> None:
    """Read the open cases of a batch's case ids at once, for `open_case` to answer from.

    Valid until the transaction ends or writes its placements (a case may change then).
    """
    wanted = sorted(set(case_ids))
    if wanted:
        session.info[_PREFETCHED] = await _read_open_cases(session, wanted)


async def open_case(session: AsyncSession, case_id: str) -> Case | None:
    """The open case a report of intake's case `case_id` joins, if assignment holds one.

    The latest, should a completed case have been followed by a fresh one; its risk is the
    highest any of its reports decided. A case the session's transaction opened or joined, or
    one read for its batch (`prefetch_open_cases`), is answered without a query.
    """
    unwritten = session.info.get(_UNWRITTEN)
    if unwritten is not None and case_id in unwritten.cases:
        case: Case = unwritten.cases[case_id]
        return case
    prefetched: dict[str, Case | None] | None = session.info.get(_PREFETCHED)
    if prefetched is not None and case_id in prefetched:
        return prefetched[case_id]
    return (await _read_open_cases(session, [case_id]))[case_id]


def record_merge(
    session: AsyncSession, case: Case, *, report_id: str, case_id: str, risk: int
) -> None:
    """Remember a report as part of `case`: its task, place and assignee, and its own risk."""
    _keep(
        session, case, report_id=report_id, case_id=case_id, merged_into=case.report_id, risk=risk
    )


async def hand_over(
    session: AsyncSession,
    task_id: str,
    group_id: str,
    level: int,
    *,
    household_id: str = "",
    grid_id: str = "",
) -> None:
    """Another group holds the task now (reassigned, or sent to triage); with `household_id`,
    the case now sits on that household (a triage report placed by hand), so that those
    responsible for it there may reveal the person and see them in their register."""
    await _write_unwritten(session)
    values: dict[str, object] = {"holder_group_id": group_id, "holder_level": level}
    if household_id:
        values |= {"node_id": household_id, "grid_id": grid_id, "triage": False}
    await session.exec(update(PLACEMENT).where(PLACEMENT.c.task_id == task_id).values(**values))


async def complete_placement(
    session: AsyncSession, task_id: str, completed_at: datetime
) -> str | None:
    """Mark a task's case completed, with every report that joined it; the case's assignee,
    or None if unknown or already completed."""
    await _write_unwritten(session)
    completed = await session.exec(
        update(PLACEMENT)
        .where(PLACEMENT.c.task_id == task_id, PLACEMENT.c.completed_at.is_(None))
        .values(completed_at=completed_at)
        .returning(PLACEMENT.c.merged_into, PLACEMENT.c.assignee_id)
    )
    # The case's own report was open until now only if it is among the rows just completed.
    return next((assignee for merged_into, assignee in completed.all() if not merged_into), None)


async def add_risk_area(session: AsyncSession, area: RiskArea) -> None:
    """Record one risk area change (commits with the session), counted for the replicas."""
    session.add(
        RiskAreaChange(
            region_code=area.region_code,
            level=area.level,
            valid_from=area.valid_from,
            valid_to=area.valid_to,
            changed_at=area.changed_at,
        )
    )
    await _bump(session, "risk_areas")


async def risk_area_history(session: AsyncSession) -> list[RiskArea]:
    """Every risk area change, oldest first."""
    rows = await session.exec(select(RiskAreaChange).order_by(col(RiskAreaChange.id)))
    return [
        RiskArea(
            region_code=r.region_code,
            level=risk_name(r.level),
            valid_from=r.valid_from,
            valid_to=r.valid_to,
            changed_at=r.changed_at,
        )
        for r in rows.all()
    ]


async def get_placement(session: AsyncSession, report_id: str) -> Placement | None:
    """Where a report was placed, if it was."""
    await _write_unwritten(session)
    return await session.get(Placement, report_id)


async def placements_of(session: AsyncSession, report_ids: Sequence[str]) -> dict[str, Placement]:
    """Where each of some reports was placed, by report id (those not placed left out), read a
    chunk at a time (a register asks for thousands)."""
    await _write_unwritten(session)
    wanted = sorted(set(report_ids))
    found: dict[str, Placement] = {}
    for start in range(0, len(wanted), _PLACEMENTS_CHUNK):
        chunk = wanted[start : start + _PLACEMENTS_CHUNK]
        rows = await session.exec(select(Placement).where(col(Placement.report_id).in_(chunk)))
        found.update((row.report_id, row) for row in rows.all())
    return found


# Report ids per statement: well under SQLite's and PostgreSQL's bound-parameter limits.
_PLACEMENTS_CHUNK = 2000
