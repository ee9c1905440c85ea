"""The person as assignment keeps them: name, ID number and phone sealed, and who asked to see
them.

Assignment owns the person: it is the service that places a report with its household and grid,
so it knows who is responsible for them, and it is the one that receives the sealed fields
(intake seals them into ReportAccepted and keeps nothing). It stores the blobs as sealed, one
row per report beside its placement, with the id of the key that sealed them, so that an
operator sees which rows still need an old key. Beside them it keeps what the register (台账)
lists of the arrival: origin, arrival time, the address as written and how they travelled. Each
request to reveal a field, granted or refused, is one row of `reveal_audit`; so is each register
that revealed anyone (`reports` of them, listed in `reveal_audit_report`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Table, insert
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.contracts.v1 import events_pb2
from gridline.db import before_commit, table_of, utc_timestamp
from gridline.personal import sealed_key_id
from gridline.timestamps import from_timestamp, now

if TYPE_CHECKING:
    from services.assignment.reveal import StaffIdentity


class SealedPerson(SQLModel, table=True):
    """A report's name, ID number and phone, sealed as intake sealed them, and the arrival the
    register lists; purged with the placement once the case has been closed for the
    retention."""

    __tablename__ = "sealed_person"

    report_id: str = Field(primary_key=True, max_length=64)
    person_key: str = Field(default="", max_length=64)
    id_number_sealed: bytes
    phone_sealed: bytes
    # The key that sealed the ID number ("": sealed before key ids); the phone's is the same.
    key_id: str = Field(default="", max_length=32, index=True)
    received_at: datetime = Field(sa_type=utc_timestamp())
    # None for reports kept before the full name was carried (their masked name is all there is).
    name_sealed: bytes | None = None
    name_masked: str = Field(default="", max_length=64)
    id_number_masked: str = Field(default="", max_length=32)
    phone_masked: str = Field(default="", max_length=32)
    origin_name: str = Field(default="", max_length=100)
    arrived_at: datetime | None = Field(default=None, sa_type=utc_timestamp())
    address: str = Field(default="", max_length=200)
    transport: str = Field(default="", max_length=8)


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
    # How many reports the request revealed: 1 for one field, a register's rows for a register.
    reports: int = 1


class RevealAuditReport(SQLModel, table=True):
    """A report a register revealed, under its audit row: whose identity a person saw, when."""

    __tablename__ = "reveal_audit_report"

    audit_id: int = Field(primary_key=True)
    report_id: str = Field(primary_key=True, max_length=64, index=True)


SEALED_PERSON: Table = table_of(SealedPerson)
REVEAL_AUDIT: Table = table_of(RevealAudit)
REVEAL_AUDIT_REPORT: Table = table_of(RevealAuditReport)

# A transaction's sealed rows, written by one statement when it commits (a consumer places
# hundreds of reports in one transaction).
_UNWRITTEN = "assignment.unwritten_sealed"


def keep(session: AsyncSession, report: events_pb2.ReportAccepted) -> None:
    """Keep a report's sealed name, ID number and phone and its arrival, with its placement's
    transaction.

    A report that carries none of them sealed (a test's, a source with no ID) keeps nothing.
    """
    if not report.id_number_sealed and not report.phone_sealed and not report.name_sealed:
        return
    rows: list[dict[str, object]] = session.info.setdefault(_UNWRITTEN, [])
    rows.append(
        {
            "report_id": report.report_id,
            "person_key": report.person_key,
            "id_number_sealed": report.id_number_sealed,
            "phone_sealed": report.phone_sealed,
            "key_id": sealed_key_id(
                report.id_number_sealed or report.phone_sealed or report.name_sealed
            ),
            "received_at": now(),
            "name_sealed": report.name_sealed or None,
            "name_masked": report.name_masked[:64],
            "id_number_masked": report.id_number_masked[:32],
            "phone_masked": report.phone_masked[:32],
            "origin_name": report.origin_name[:100],
            "arrived_at": from_timestamp(report.arrived_at)
            if report.HasField("arrived_at")
            else None,
            "address": report.address[:200],
            "transport": report.transport[:8],
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


async def persons_of(session: AsyncSession, report_ids: Collection[str]) -> dict[str, SealedPerson]:
    """The kept persons of some reports, by report id (reports without one left out), read a
    chunk at a time so that a register of thousands stays within the databases' parameter
    limits."""
    wanted = sorted(set(report_ids))
    found: dict[str, SealedPerson] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = await session.exec(
            select(SealedPerson).where(col(SealedPerson.report_id).in_(chunk))
        )
        found.update((row.report_id, row) for row in rows.all())
    return found


# Report ids per statement: well under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
_CHUNK = 2000


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


async def audit_register(
    session: AsyncSession,
    *,
    at: datetime,
    staff: StaffIdentity,
    purpose: str,
    report_ids: Sequence[str],
    refused: str = "",
) -> None:
    """Record that `staff` saw the name, ID number and phone of `report_ids` in a register: one
    audit row for the register, and the reports it revealed under it (commits with the
    session); with `refused`, the reason a register in clear was refused, and no report."""
    row = RevealAudit(
        at=at,
        staff_subject=staff.subject[:100],
        staff_name=staff.name[:100],
        staff_role=staff.role[:32],
        staff_node_id=staff.node_id[:64],
        report_id="",
        field=REGISTER_FIELD,
        purpose=purpose[:200],
        outcome="refused" if refused else "revealed",
        reason=refused[:200],
        reports=len(report_ids),
    )
    session.add(row)
    await session.flush()
    if report_ids:
        await session.exec(
            insert(REVEAL_AUDIT_REPORT),
            params=[{"audit_id": row.id, "report_id": report_id} for report_id in report_ids],
        )


# The audit's `field` of a register: its name, ID number and phone columns at once.
REGISTER_FIELD = "register"
