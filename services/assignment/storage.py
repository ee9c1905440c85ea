"""Assignment's tables and the reads and writes on them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import LargeBinary, Table, func, insert, update
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.db import utc_timestamp
from gridline.personal import Sealer
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


TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
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
    rows = await session.exec(
        select(Placement.assignee_id, func.count())  # type: ignore[arg-type]
        .where(Placement.completed_at.is_(None), Placement.merged_into == "")  # type: ignore[union-attr]
        .group_by(Placement.assignee_id)
    )
    return {assignee: int(count) for assignee, count in rows.all() if assignee}


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
    session.add(
        Placement(
            report_id=report_id,
            task_id=task_id,
            case_id=case_id or report_id,
            node_id=node_id,
            grid_id=grid_id,
            triage=triage,
            assignee_id=assignee_id,
            holder_group_id=holder_group_id,
            holder_level=holder_level,
            risk=risk,
            measure_id=measure_id,
            policy_version=policy_version,
        )
    )


async def open_case(session: AsyncSession, case_id: str) -> Case | None:
    """The open case a report of intake's case `case_id` joins, if assignment holds one.

    The latest, should a completed case have been followed by a fresh one; its risk is the
    highest any of its reports decided.
    """
    root = (
        await session.exec(
            select(Placement)
            .where(
                Placement.case_id == case_id,
                Placement.merged_into == "",
                Placement.completed_at.is_(None),  # type: ignore[union-attr]
            )
            .order_by(Placement.placed_at.desc())  # type: ignore[attr-defined]
        )
    ).first()
    if root is None:
        return None
    risk = (
        await session.exec(
            select(func.max(Placement.risk)).where(Placement.task_id == root.task_id)
        )
    ).one()
    return Case(
        report_id=root.report_id,
        task_id=root.task_id,
        node_id=root.node_id,
        grid_id=root.grid_id,
        triage=root.triage,
        risk=int(risk or 0),
        assignee_id=root.assignee_id,
        holder_group_id=root.holder_group_id,
        holder_level=root.holder_level,
        measure_id=root.measure_id,
        policy_version=root.policy_version,
    )


def record_merge(
    session: AsyncSession, case: Case, *, report_id: str, case_id: str, risk: int
) -> None:
    """Remember a report as part of `case`: its task, place and assignee, and its own risk."""
    session.add(
        Placement(
            report_id=report_id,
            task_id=case.task_id,
            case_id=case_id,
            merged_into=case.report_id,
            node_id=case.node_id,
            grid_id=case.grid_id,
            triage=case.triage,
            assignee_id=case.assignee_id,
            holder_group_id=case.holder_group_id,
            holder_level=case.holder_level,
            risk=risk,
            measure_id=case.measure_id,
            policy_version=case.policy_version,
        )
    )


async def hand_over(session: AsyncSession, task_id: str, group_id: str, level: int) -> None:
    """Another group holds the task now (reassigned, or sent to triage)."""
    await (await session.connection()).execute(
        update(Placement)
        .where(Placement.task_id == task_id)  # type: ignore[arg-type]
        .values(holder_group_id=group_id, holder_level=level)
    )


async def complete_placement(
    session: AsyncSession, task_id: str, completed_at: datetime
) -> str | None:
    """Mark a task's case completed, with every report that joined it; the case's assignee,
    or None if unknown or already completed."""
    rows = (await session.exec(select(Placement).where(Placement.task_id == task_id))).all()
    root = next((p for p in rows if not p.merged_into), None)
    if root is None or root.completed_at is not None:
        return None
    for placement in rows:
        placement.completed_at = completed_at
        session.add(placement)
    return root.assignee_id


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
    placement = await session.get(Placement, report_id)
    if placement is not None:
        placement.placed_at = _utc(placement.placed_at)  # type: ignore[assignment]
    return placement
