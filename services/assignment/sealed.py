"""The person's ID number and phone as assignment keeps them: sealed, and who asked to see them.

Assignment owns the person: it is the service that places a report with its household and grid,
so it knows who is responsible for them, and it is the one that receives the sealed fields
(intake seals them into ReportAccepted and keeps nothing). It stores the blobs as sealed, one
row per report beside its placement, with the id of the key that sealed them, so that an
operator sees which rows still need an old key. Each request to reveal a field, granted or
refused, is one row of `reveal_audit`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Table, insert
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.contracts.v1 import events_pb2
from gridline.db import before_commit, table_of, utc_timestamp
from gridline.personal import sealed_key_id
from gridline.timestamps import now

if TYPE_CHECKING:
    from services.assignment.reveal import StaffIdentity


class SealedPerson(SQLModel, table=True):
    """A report's ID number and phone, sealed as intake sealed them; purged with the placement
    once the case has been closed for the retention."""

    __tablename__ = "sealed_person"

    report_id: str = Field(primary_key=True, max_length=64)
    person_key: str = Field(default="", max_length=64)
    id_number_sealed: bytes
    phone_sealed: bytes
    # The key that sealed the ID number ("": sealed before key ids); the phone's is the same.
    key_id: str = Field(default="", max_length=32, index=True)
    received_at: datetime = Field(sa_type=utc_timestamp())


class RevealAudit(SQLModel, table=True):
    """One request to see a sealed field: who, when, what for, and what they were told."""

    __tablename__ = "reveal_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=utc_timestamp(), index=True)
    staff_subject: str = Field(max_length=100)
    staff_name: str = Field(max_length=100)
    staff_role: str = Field(max_length=32)
    staff_node_id: str = Field(max_length=64)
    report_id: str = Field(max_length=64, index=True)
    field: str = Field(max_length=16)
    purpose: str = Field(max_length=200)
    outcome: str = Field(max_length=16)  # revealed, refused, absent, unreadable
    reason: str = Field(default="", max_length=200)


SEALED_PERSON: Table = table_of(SealedPerson)
REVEAL_AUDIT: Table = table_of(RevealAudit)

# A transaction's sealed rows, written by one statement when it commits (a consumer places
# hundreds of reports in one transaction).
_UNWRITTEN = "assignment.unwritten_sealed"


def keep(session: AsyncSession, report: events_pb2.ReportAccepted) -> None:
    """Keep a report's sealed ID number and phone, with its placement's transaction.

    A report that carries neither (a test's, a source with no ID) keeps nothing.
    """
    if not report.id_number_sealed and not report.phone_sealed:
        return
    rows: list[dict[str, object]] = session.info.setdefault(_UNWRITTEN, [])
    rows.append(
        {
            "report_id": report.report_id,
            "person_key": report.person_key,
            "id_number_sealed": report.id_number_sealed,
            "phone_sealed": report.phone_sealed,
            "key_id": sealed_key_id(report.id_number_sealed or report.phone_sealed),
            "received_at": now(),
        }
    )
    before_commit(session, _UNWRITTEN, _write)


async def _write(session: AsyncSession) -> None:
    rows = session.info.pop(_UNWRITTEN, None)
    if rows:
        await session.exec(insert(SEALED_PERSON), params=rows)


async def sealed_of(session: AsyncSession, report_id: str) -> SealedPerson | None:
    """The sealed fields of a report, unless it brought none or they were purged."""
    return await session.get(SealedPerson, report_id)


def audit(
    session: AsyncSession,
    *,
    at: datetime,
    staff: StaffIdentity,
    report_id: str,
    field: str,
    purpose: str,
    outcome: str,
    reason: str = "",
) -> None:
    """Record one request to reveal by `staff` (commits with the session)."""
    session.add(
        RevealAudit(
            at=at,
            staff_subject=staff.subject[:100],
            staff_name=staff.name[:100],
            staff_role=staff.role[:32],
            staff_node_id=staff.node_id[:64],
            report_id=report_id[:64],
            field=field[:16],
            purpose=purpose[:200],
            outcome=outcome,
            reason=reason[:200],
        )
    )
