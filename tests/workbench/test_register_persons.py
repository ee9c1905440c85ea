"""The register's persons as assignment lists them: masked by default, in clear for the cadre
and the offices above when asked with a purpose, one audit row per register that revealed
anyone, nobody outside the asker's node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from gridline.db import Database
from gridline.settings import Settings
from gridline.timestamps import to_timestamp
from services.assignment import sealed, storage
from services.assignment.reveal import (
    RegisterPerson,
    RevealField,
    RevealRefused,
    register_persons,
    reveal,
)
from tests.personal_data.support import ID_NUMBER, PHONE, SEALER, StaffMember, county, sealed_report

DIRECTORY = county()
ARRIVED = datetime(2022, 1, 28, 10, 40, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """Assignment's database: r-home at household h1 (grid g1, cadre 王伟), r-triage waiting at
    community cm2, both with a sealed full name, ID number and phone and their arrival."""
    settings = Settings(data_dir=tmp_path)
    async with Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as database:
        async with database.session() as session:
            for report_id, node_id in (("r-home", "h1"), ("r-triage", "cm2")):
                storage.record_placement(
                    session, report_id=report_id, task_id=f"task-{report_id}", node_id=node_id,
                    grid_id="g1" if node_id == "h1" else "cm2", triage=node_id == "cm2",
                    assignee_id="p-a" if node_id == "h1" else "",
                )  # fmt: skip
                report = sealed_report(report_id)
                report.name_sealed = SEALER.seal("张建国", "name")
                report.name_masked = "张**"
                report.origin_name = "上海市浦东新区"
                report.arrived_at.CopyFrom(to_timestamp(ARRIVED))
                report.address = "文化苑2号楼2单元201室"
                report.transport = "火车"
                sealed.keep(session, report)
        yield database


async def audits(db: Database) -> list[sealed.RevealAudit]:
    async with db.session() as session:
        rows = await session.exec(select(sealed.RevealAudit).order_by(col(sealed.RevealAudit.id)))
        return list(rows.all())


async def listed(
    db: Database, staff: StaffMember, reveal: bool, purpose: str = ""
) -> dict[str, RegisterPerson]:
    persons = await register_persons(
        db, DIRECTORY, SEALER, staff, report_ids=["r-home", "r-triage", "r-none"],
        reveal_identity=reveal, purpose=purpose,
    )  # fmt: skip
    return {p.report_id: p for p in persons}


async def test_a_register_is_masked_unless_asked_and_then_audited_once(db: Database) -> None:
    office = StaffMember("s-t1", "township_office", "t1", "李主任")
    masked = await listed(db, office, reveal=False)
    assert set(masked) == {"r-home", "r-triage"}
    home = masked["r-home"]
    assert (home.name, home.id_number, home.phone, home.revealed) == (
        "张**", "**************1234", "138****5678", False,
    )  # fmt: skip
    assert (home.origin_name, home.arrived_at, home.transport) == (
        "上海市浦东新区",
        ARRIVED,
        "火车",
    )
    assert (home.cadre_name, home.place_name) == ("王伟", "文化苑2号楼2单元201室")
    assert await audits(db) == []

    clear = await listed(db, office, reveal=True, purpose="报送县联防联控办核对")
    assert (clear["r-home"].name, clear["r-home"].id_number, clear["r-home"].phone) == (
        "张建国", ID_NUMBER, PHONE,
    )  # fmt: skip
    assert all(p.revealed for p in clear.values())
    [audit] = await audits(db)
    assert (audit.staff_name, audit.staff_role, audit.field, audit.reports) == (
        "李主任", "township_office", sealed.REGISTER_FIELD, 2,
    )  # fmt: skip
    assert audit.purpose == "报送县联防联控办核对"
    async with db.session() as session:
        revealed = await session.exec(select(sealed.RevealAuditReport))
        assert {(r.audit_id, r.report_id) for r in revealed.all()} == {
            (audit.id, "r-home"), (audit.id, "r-triage"),
        }  # fmt: skip


async def test_each_role_sees_only_its_node_and_reveals_only_as_the_rule_allows(
    db: Database,
) -> None:
    cadre = await listed(db, StaffMember("s-g1", "cadre", "g1"), reveal=True, purpose="入户核查")
    assert set(cadre) == {"r-home"} and cadre["r-home"].revealed
    # A triage case has no grid: the community it waits at sees it, the next township nothing.
    assert set(await listed(db, StaffMember("s-cm2", "community_staff", "cm2"), False)) == {
        "r-triage"
    }
    assert await listed(db, StaffMember("s-t2", "township_office", "t2"), True, "核对") == {}
    # The health centre follows tests: masked, never in clear.
    centre = StaffMember("s-hc", "health_centre", "t1")
    assert not any(p.revealed for p in (await listed(db, centre, False)).values())
    with pytest.raises(RevealRefused, match="卫生院无权查看姓名、身份证号和手机号"):
        await listed(db, centre, True, "核酸检测")
    with pytest.raises(RevealRefused, match="运维人员无权查看人员台账"):
        await listed(db, StaffMember("s-op", "operator", "county"), False)
    with pytest.raises(RevealRefused, match="请写明查看用途"):
        await listed(db, StaffMember("s-c", "county_office", "county"), True, " ")
    # Only the cadre's register revealed anyone; each refusal is audited too, revealing nobody.
    assert [(a.staff_subject, a.outcome, a.reports, a.reason) for a in await audits(db)] == [
        ("s-g1", "revealed", 1, ""),
        ("s-hc", "refused", 0, "卫生院无权查看姓名、身份证号和手机号"),
        ("s-op", "refused", 0, "运维人员无权查看人员台账"),
        ("s-c", "refused", 0, "请写明查看用途"),
    ]


async def test_the_full_name_is_revealed_one_at_a_time_like_the_id_number(db: Database) -> None:
    cadre = StaffMember("s-g1", "cadre", "g1", "王伟")
    name = await reveal(
        db, DIRECTORY, SEALER, cadre, report_id="r-home", field=RevealField.NAME, purpose="入户"
    )
    assert name == "张建国"
    [audit] = await audits(db)
    assert (audit.field, audit.reports, audit.staff_name) == ("name", 1, "王伟")
