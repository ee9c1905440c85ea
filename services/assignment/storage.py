"""Assignment's tables and the reads and writes on them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import LargeBinary, Table, bindparam, event, func, insert, update
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX_TABLES
from gridline.db import utc_timestamp
from gridline.personal import Sealer
from gridline.timestamps import now
from services.assignment.cases import Case
from services.assignment.directory import (
    Directory,
    Group,
    MicroGrid,
    Node,
    NodeKind,
    Person,
    Role,
)
from services.assignment.risk import RiskArea

# Binds a sealed robot secret to its field, so it cannot be passed off as another sealed value.
ROBOT_SECRET_CONTEXT = "assignment.group.robot_secret"
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
    """A chat group and its robot; the robot's secret only sealed."""

    __tablename__ = "directory_group"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    robot_webhook: str = Field(default="", max_length=500)
    robot_secret_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)


class DirectoryMicroGrid(SQLModel, table=True):
    """Three to five neighbouring households and their leader."""

    __tablename__ = "directory_micro_grid"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    leader_id: str = Field(max_length=64)


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
        sa_type=utc_timestamp(),  # type: ignore[call-overload]
    )
    completed_at: datetime | None = Field(default=None, sa_type=utc_timestamp())  # type: ignore[call-overload]


class RiskAreaChange(SQLModel, table=True):
    """One change of a risk area, kept forever: the history of who was what risk, when."""

    __tablename__ = "risk_area_change"

    id: int | None = Field(default=None, primary_key=True)
    region_code: str = Field(max_length=12, index=True)
    level: str = Field(max_length=8)
    valid_from: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]
    valid_to: datetime | None = Field(default=None, sa_type=utc_timestamp())  # type: ignore[call-overload]
    changed_at: datetime = Field(sa_type=utc_timestamp())  # type: ignore[call-overload]


PLACEMENT: Table = Placement.__table__  # type: ignore[attr-defined]
# This service's Alembic revisions (`gridline.db.Database` upgrades to the newest at start).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
    *OUTBOX_TABLES,
    *(
        m.__table__  # type: ignore[attr-defined]
        for m in (
            DirectoryNode,
            DirectoryPerson,
            DirectoryGroup,
            DirectoryMicroGrid,
            Placement,
            RiskAreaChange,
        )
    ),
]


async def directory_size(session: AsyncSession) -> int:
    """How many grid nodes are stored."""
    result = await session.exec(select(func.count()).select_from(DirectoryNode))
    return int(result.one())


async def replace_directory(session: AsyncSession, directory: Directory, sealer: Sealer) -> None:
    """Store a whole directory in place of what was there (one transaction)."""
    for model in (DirectoryNode, DirectoryPerson, DirectoryGroup, DirectoryMicroGrid):
        await session.exec(model.__table__.delete())  # type: ignore[attr-defined, call-overload]
    groups = [
        {
            "id": g.id,
            "name": g.name,
            "robot_webhook": g.robot_webhook,
            "robot_secret_sealed": (
                sealer.seal(g.robot_secret, ROBOT_SECRET_CONTEXT) if g.robot_secret else None
            ),
        }
        for g in directory.groups.values()
    ]
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
    for model, values in (
        (DirectoryGroup, groups),
        (DirectoryPerson, people),
        (DirectoryMicroGrid, micro_grids),
        (DirectoryNode, nodes),
    ):
        if values:
            # A core bulk insert: one statement per table, not one ORM object per row.
            await (await session.connection()).execute(insert(model), values)


async def load_directory(session: AsyncSession, sealer: Sealer) -> Directory:
    """The stored directory as domain objects, robot secrets unsealed."""
    nodes = [
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
        for r in (await session.exec(select(DirectoryNode))).all()
    ]
    people = [
        Person(r.id, r.name, Role(r.role), r.phone, r.group_id, r.chat_id, r.on_leave, r.backup_id)
        for r in (await session.exec(select(DirectoryPerson))).all()
    ]
    groups = [
        Group(
            r.id,
            r.name,
            r.robot_webhook,
            sealer.unseal(r.robot_secret_sealed, ROBOT_SECRET_CONTEXT)
            if r.robot_secret_sealed
            else "",
        )
        for r in (await session.exec(select(DirectoryGroup))).all()
    ]
    micro_grids = [
        MicroGrid(r.id, r.name, r.leader_id)
        for r in (await session.exec(select(DirectoryMicroGrid))).all()
    ]
    return Directory(nodes, people, groups, micro_grids)


async def save_duty(session: AsyncSession, person: Person) -> None:
    """Store a cadre's duty state (on leave, backup)."""
    await (await session.connection()).execute(
        update(DirectoryPerson)
        .where(DirectoryPerson.id == person.id)  # type: ignore[arg-type]
        .values(on_leave=person.on_leave, backup_id=person.backup_id)
    )


async def open_counts(session: AsyncSession) -> dict[str, int]:
    """How many open cases each person holds (a case counts once, however many reports)."""
    await _write_unwritten(session)
    rows = await session.exec(
        select(Placement.assignee_id, func.count())  # type: ignore[arg-type]
        .where(Placement.completed_at.is_(None), Placement.merged_into == "")  # type: ignore[union-attr]
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
    unwritten = session.info.pop(_UNWRITTEN, None)
    if unwritten is not None and unwritten.rows:
        session.connection().execute(insert(PLACEMENT), unwritten.rows)


@event.listens_for(Session, "after_rollback")
def _forget_at_rollback(session: Session) -> None:
    session.info.pop(_UNWRITTEN, None)


async def _write_unwritten(session: AsyncSession) -> None:
    """Write the transaction's placements now and forget its cases, which may change next."""
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
# The latest open case of a case id, its risk the highest any of its reports decided.
_OPEN_CASE = (
    select(  # type: ignore[call-overload]
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
        PLACEMENT.c.case_id == bindparam("case_id"),
        PLACEMENT.c.merged_into == "",
        PLACEMENT.c.completed_at.is_(None),
    )
    .order_by(PLACEMENT.c.placed_at.desc())
    .limit(1)
)


async def open_case(session: AsyncSession, case_id: str) -> Case | None:
    """The open case a report of intake's case `case_id` joins, if assignment holds one.

    The latest, should a completed case have been followed by a fresh one; its risk is the
    highest any of its reports decided. A case the session's transaction opened or joined
    is answered from what the transaction keeps, without a query.
    """
    unwritten = session.info.get(_UNWRITTEN)
    if unwritten is not None and case_id in unwritten.cases:
        return unwritten.cases[case_id]
    found = (await session.exec(_OPEN_CASE, params={"case_id": case_id})).first()
    if found is None:
        return None
    report_id, task_id, node_id, grid_id, triage, risk, *holder = found
    assignee_id, holder_group_id, holder_level, measure_id, policy_version = holder
    return Case(
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


def record_merge(
    session: AsyncSession, case: Case, *, report_id: str, case_id: str, risk: int
) -> None:
    """Remember a report as part of `case`: its task, place and assignee, and its own risk."""
    _keep(
        session, case, report_id=report_id, case_id=case_id, merged_into=case.report_id, risk=risk
    )


async def hand_over(session: AsyncSession, task_id: str, group_id: str, level: int) -> None:
    """Another group holds the task now (reassigned, or sent to triage)."""
    await _write_unwritten(session)
    await session.exec(
        update(PLACEMENT)
        .where(PLACEMENT.c.task_id == task_id)
        .values(holder_group_id=group_id, holder_level=level)
    )


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


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def add_risk_area(session: AsyncSession, area: RiskArea) -> None:
    """Record one risk area change (commits with the session)."""
    session.add(
        RiskAreaChange(
            region_code=area.region_code,
            level=area.level,
            valid_from=area.valid_from,
            valid_to=area.valid_to,
            changed_at=area.changed_at,
        )
    )


async def risk_area_history(session: AsyncSession) -> list[RiskArea]:
    """Every risk area change, oldest first."""
    rows = await session.exec(select(RiskAreaChange).order_by(RiskAreaChange.id))  # type: ignore[arg-type]
    return [
        RiskArea(
            region_code=r.region_code,
            level=r.level,  # type: ignore[arg-type]
            valid_from=_utc(r.valid_from),  # type: ignore[arg-type]
            valid_to=_utc(r.valid_to),
            changed_at=_utc(r.changed_at),  # type: ignore[arg-type]
        )
        for r in rows.all()
    ]


async def get_placement(session: AsyncSession, report_id: str) -> Placement | None:
    """Where a report was placed, if it was."""
    await _write_unwritten(session)
    placement = await session.get(Placement, report_id)
    if placement is not None:
        placement.placed_at = _utc(placement.placed_at)  # type: ignore[assignment]
    return placement
