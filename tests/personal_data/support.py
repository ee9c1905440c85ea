"""What the personal-data tests share: a small county, staff members, sealed reports, rows
old and recent."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Table, insert, select

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX
from gridline.bus.producer import RawRecord
from gridline.contracts.v1 import events_pb2
from gridline.db import Database
from gridline.personal import Sealer
from gridline.timestamps import now
from services.assignment.directory import Directory
from services.assignment.grid import Node, NodeKind
from tests.assignment.support import small_county

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
SEALER = Sealer([("2026a", KEY)])
ID_NUMBER = "620102199003071234"
PHONE = "13812345678"


@dataclass(frozen=True)
class StaffMember:
    """A staff identity as the staff authentication hands it over."""

    subject: str
    role: str
    node_id: str
    name: str = "测试人员"


def county() -> Directory:
    """County › two townships › t1's communities cm1 (grids g1, g2) and cm2 (grid g3); one
    household h1 in g1."""
    return small_county(
        [
            Node("county", NodeKind.COUNTY, "皋兰县", None, "p-county"),
            Node("t1", NodeKind.TOWNSHIP, "石洞镇", "county"),
            Node("t2", NodeKind.TOWNSHIP, "忠和镇", "county"),
            Node("cm1", NodeKind.COMMUNITY, "三川社区", "t1"),
            Node("cm2", NodeKind.COMMUNITY, "城北社区", "t1"),
            Node("g1", NodeKind.GRID, "文化苑", "cm1"),
            Node("g2", NodeKind.GRID, "三川苑", "cm1"),
            Node("g3", NodeKind.GRID, "新建村", "cm2"),
            Node("b1", NodeKind.BUILDING, "2号楼", "g1"),
            Node("u1", NodeKind.UNIT, "2单元", "b1", "p-a"),
            Node("h1", NodeKind.HOUSEHOLD, "201室", "u1", address="文化苑2号楼2单元201室"),
        ]
    )


def sealed_report(report_id: str, sealer: Sealer = SEALER) -> events_pb2.ReportAccepted:
    """An accepted report whose ID number and phone `sealer` sealed, as intake sends it."""
    return events_pb2.ReportAccepted(
        report_id=report_id,
        person_key=f"k-{report_id}",
        id_number_sealed=sealer.seal(ID_NUMBER, "id_number"),
        phone_sealed=sealer.seal(PHONE, "phone"),
        id_number_masked="**************1234",
        phone_masked="138****5678",
    )


class Confirming:
    """Stands in for the broker behind an outbox: every record confirmed."""

    async def send_many(self, records: Sequence[RawRecord]) -> list[bool]:
        """All confirmed."""
        return [True] * len(records)


NOW = now()
# Past the 30 days' retention, within it, and long ago.
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=10)
LONG_AGO = NOW - timedelta(days=90)


async def add_bus_rows(db: Database, *, ledger: bool) -> None:
    """Outbox rows published and not, old and recent; ledger marks old and recent."""
    outbox = [
        ("old-published", OLD, OLD),
        ("old-unpublished", OLD, None),
        ("recent", RECENT, RECENT),
    ]
    async with db.session() as session:
        await session.exec(
            insert(OUTBOX),
            params=[
                {
                    "topic": "reports.v1", "event_id": event_id, "key": b"k",
                    "value": b"sealed and address", "headers": json.dumps({}),
                    "created_at": created, "published_at": published,
                }
                for event_id, created, published in outbox
            ],
        )  # fmt: skip
        if ledger:
            await session.exec(
                insert(PROCESSED_EVENT_TABLE),
                params=[
                    {"consumer": "g", "event_id": "old", "processed_at": OLD},
                    {"consumer": "g", "event_id": "recent", "processed_at": RECENT},
                ],
            )


async def column(db: Database, table: Table, name: str) -> list[str]:
    """Every value of one column, sorted."""
    async with db.session() as session:
        connection = await session.connection()
        return sorted((await connection.execute(select(table.c[name]))).scalars().all())
