"""Escalation's parts for tests that need no broker: its database with an outbox that keeps
what transactions stage and publishes nothing, and a small county's Directory over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, select

from gridline.bus.outbox import OUTBOX, Outbox
from gridline.db import Database
from gridline.settings import Settings
from services.assignment.directory import Directory, Group, Person, Role
from services.assignment.grid import Node, NodeKind
from services.escalation import storage


class _NoBroker:
    """Stands in for the producer: the outbox's relay is never started, so nothing is sent."""


@asynccontextmanager
async def escalation_db(settings: Settings) -> AsyncIterator[Database]:
    """Escalation's tables, emptied (a PostgreSQL database serves a whole module); what a
    transaction stages is written to the outbox table only."""
    async with Database(settings, "escalation", storage.TABLES) as db:
        async with db.engine.begin() as conn:
            for table in storage.TABLES:
                await conn.execute(delete(table))
        # Registers its write with the database; its relay is never started.
        Outbox(db, _NoBroker(), settings)  # type: ignore[arg-type]
        yield db


async def staged(db: Database, topic: str) -> int:
    """How many records transactions staged on `topic`."""
    async with db.engine.connect() as conn:
        return len((await conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.topic == topic))).all())


HOUSEHOLD = "h-101"
OTHER_HOUSEHOLD = "h-102"


def county() -> Directory:
    """One grid down to two households, with a cadre, a liaison, community, township and county
    office, each with a group."""
    nodes = [
        Node("c", NodeKind.COUNTY, "皋兰县", None, "p-county"),
        Node("t", NodeKind.TOWNSHIP, "石洞镇", "c", "p-township"),
        Node("cm", NodeKind.COMMUNITY, "三川社区", "t", "p-community"),
        Node("g", NodeKind.GRID, "文化苑", "cm", "p-liaison"),
        Node("b", NodeKind.BUILDING, "1号楼", "g"),
        Node("u", NodeKind.UNIT, "1单元", "b", "p-cadre"),
        Node(HOUSEHOLD, NodeKind.HOUSEHOLD, "101室", "u", address="文化苑1号楼1单元101室"),
        Node(OTHER_HOUSEHOLD, NodeKind.HOUSEHOLD, "102室", "u", address="文化苑1号楼1单元102室"),
    ]
    roles = {
        "p-county": Role.COUNTY_OFFICE,
        "p-township": Role.TOWNSHIP_OFFICE,
        "p-community": Role.COMMUNITY_STAFF,
        "p-liaison": Role.LIAISON,
        "p-cadre": Role.CADRE,
    }
    people = [
        Person(pid, pid, role, f"1390000000{n}", f"grp-{pid}")
        for n, (pid, role) in enumerate(roles.items())
    ]
    return Directory(nodes, people, [Group(f"grp-{pid}", f"{pid}群") for pid in roles])
