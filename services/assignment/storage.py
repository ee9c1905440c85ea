"""Assignment's tables and the reads and writes on them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table, func, insert
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.db import utc_timestamp
from services.assignment.directory import Directory, Group, Node, NodeKind, Person, Role


class DirectoryNode(SQLModel, table=True):
    """A place of the grid, county down to household."""

    __tablename__ = "directory_node"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16, index=True)
    name: str = Field(max_length=100)
    parent_id: str | None = Field(default=None, max_length=64, index=True)
    responsible_id: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=200)


class DirectoryPerson(SQLModel, table=True):
    """A responsible person of the chain."""

    __tablename__ = "directory_person"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=64)
    role: str = Field(max_length=32)
    phone: str = Field(max_length=20)
    group_id: str = Field(max_length=64)


class DirectoryGroup(SQLModel, table=True):
    """A chat group."""

    __tablename__ = "directory_group"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)


class Placement(SQLModel, table=True):
    """Where a report was placed and the task it became."""

    __tablename__ = "placement"

    report_id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(max_length=64, unique=True)
    node_id: str = Field(max_length=64)
    triage: bool
    placed_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_type=utc_timestamp(),  # type: ignore[call-overload]
    )


TABLES: list[Table] = [
    PROCESSED_EVENT_TABLE,
    *(m.__table__ for m in (DirectoryNode, DirectoryPerson, DirectoryGroup, Placement)),  # type: ignore[attr-defined]
]


async def directory_size(session: AsyncSession) -> int:
    """How many grid nodes are stored."""
    result = await session.exec(select(func.count()).select_from(DirectoryNode))
    return int(result.one())


async def replace_directory(
    session: AsyncSession, nodes: list[Node], people: list[Person], groups: list[Group]
) -> None:
    """Store a whole directory in place of what was there (one transaction)."""
    for model in (DirectoryNode, DirectoryPerson, DirectoryGroup):
        await session.exec(model.__table__.delete())  # type: ignore[attr-defined, call-overload]
    rows = (
        (DirectoryGroup, [{"id": g.id, "name": g.name} for g in groups]),
        (
            DirectoryPerson,
            [
                {
                    "id": p.id,
                    "name": p.name,
                    "role": p.role.value,
                    "phone": p.phone,
                    "group_id": p.group_id,
                }
                for p in people
            ],
        ),
        (
            DirectoryNode,
            [
                {
                    "id": n.id,
                    "kind": n.kind.value,
                    "name": n.name,
                    "parent_id": n.parent_id,
                    "responsible_id": n.responsible_id,
                    "address": n.address,
                }
                for n in nodes
            ],
        ),
    )
    for model, values in rows:
        if values:
            await session.execute(insert(model), values)


async def load_directory(session: AsyncSession) -> Directory:
    """The stored directory as domain objects."""
    nodes = [
        Node(r.id, NodeKind(r.kind), r.name, r.parent_id, r.responsible_id, r.address)
        for r in (await session.exec(select(DirectoryNode))).all()
    ]
    people = [
        Person(r.id, r.name, Role(r.role), r.phone, r.group_id)
        for r in (await session.exec(select(DirectoryPerson))).all()
    ]
    groups = [Group(r.id, r.name) for r in (await session.exec(select(DirectoryGroup))).all()]
    return Directory(nodes, people, groups)


def record_placement(
    session: AsyncSession, *, report_id: str, task_id: str, node_id: str, triage: bool
) -> None:
    """Remember where a report went (commits with the consumer's transaction)."""
    session.add(Placement(report_id=report_id, task_id=task_id, node_id=node_id, triage=triage))


async def get_placement(session: AsyncSession, report_id: str) -> Placement | None:
    """Where a report was placed, if it was."""
    placement = await session.get(Placement, report_id)
    if placement is not None and placement.placed_at.tzinfo is None:
        # SQLite hands timestamps back without their zone; they were stored in UTC.
        placement.placed_at = placement.placed_at.replace(tzinfo=UTC)
    return placement
