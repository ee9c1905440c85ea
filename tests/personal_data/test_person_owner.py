"""Assignment owns the person: it keeps each report's ID number and phone as intake sealed them,
reveals them while the case is open, and forgets them once the case has been closed for the
retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.bus.retention import personal_data_cutoff
from gridline.contracts.v1 import events_pb2
from gridline.db import Database
from gridline.settings import Settings
from gridline.timestamps import now
from services.assignment import sealed, storage
from services.assignment.assignee import CadreLoad
from services.assignment.consumers import report_handler, task_handler
from services.assignment.following import Current
from services.assignment.retention import PERSONAL_DATA
from services.assignment.reveal import NothingToReveal, RevealField, reveal
from tests.assignment.support import LINKS, POLICY
from tests.personal_data.support import (
    ID_NUMBER,
    PHONE,
    SEALER,
    Confirming,
    StaffMember,
    county,
    sealed_report,
)

DIRECTORY = county()
ADDRESS = "皋兰县石洞镇三川社区文化苑2号楼2单元201室"
CADRE = StaffMember("s-cadre", "cadre", "g1")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    settings = Settings(data_dir=tmp_path)
    async with (
        Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as database,
        Outbox(database, Confirming(), settings),  # type: ignore[arg-type]
    ):
        yield database


async def place(db: Database, *reports: events_pb2.ReportAccepted) -> None:
    """The reports consumer's handler on one batch, as the consumer runs it."""
    handle = report_handler(Current(DIRECTORY), LINKS, CadreLoad(), POLICY)
    async with db.session() as session:
        for report in reports:
            await handle(Envelope(report.report_id, report.person_key, report), session)


def at_home(report_id: str, case: str = "") -> events_pb2.ReportAccepted:
    report = sealed_report(report_id)
    report.person_key = "k-person"
    report.address = ADDRESS
    report.case_report_id = case
    return report


async def test_each_report_s_sealed_fields_are_kept_sealed_with_their_key_id(
    db: Database,
) -> None:
    first, later = at_home("r-1"), at_home("r-2", case="r-1")
    await place(db, first, later)
    async with db.session() as session:
        rows = (await session.exec(select(sealed.SealedPerson))).all()
    assert sorted(r.report_id for r in rows) == ["r-1", "r-2"]
    for row in rows:
        assert row.key_id == "2026a"
        assert ID_NUMBER.encode() not in row.id_number_sealed + row.phone_sealed
        assert PHONE.encode() not in row.id_number_sealed + row.phone_sealed
    # The later report joined the open case; its own phone is revealed from its own row.
    for report_id in ("r-1", "r-2"):
        assert (
            await reveal(
                db, DIRECTORY, SEALER, CADRE, report_id=report_id, field=RevealField.PHONE,
                purpose="电话联系",
            )
            == PHONE
        )  # fmt: skip


async def test_a_report_without_sealed_fields_keeps_no_row(db: Database) -> None:
    bare = at_home("r-bare")
    bare.ClearField("id_number_sealed")
    bare.ClearField("phone_sealed")
    await place(db, bare)
    async with db.session() as session:
        assert await sealed.sealed_of(session, "r-bare") is None


async def test_once_the_case_is_closed_for_the_retention_nothing_is_left_to_reveal(
    db: Database,
) -> None:
    await place(db, at_home("r-1"))
    placement = await _placement(db, "r-1")
    closed = events_pb2.TaskEvent(
        task_id=placement.task_id, kind=events_pb2.TASK_EVENT_KIND_COMPLETED
    )
    closed.occurred_at.FromDatetime((now() - timedelta(days=31)).astimezone(UTC))
    async with db.session() as session:
        await task_handler(CadreLoad())(Envelope("done", "k", closed), session)
    # Closed 31 days ago, past the 30 days' retention: the placement and its sealed row go.
    settings = Settings(personal_data_retention_days=30)
    assert (await PERSONAL_DATA.purge(db, personal_data_cutoff(settings, now())))["placement"] == 1
    with pytest.raises(NothingToReveal):
        await reveal(
            db, DIRECTORY, SEALER, CADRE, report_id="r-1", field=RevealField.ID_NUMBER,
            purpose="入户核查",
        )  # fmt: skip


async def _placement(db: Database, report_id: str) -> storage.Placement:
    async with db.session() as session:
        found = await storage.get_placement(session, report_id)
    assert found is not None
    return found
