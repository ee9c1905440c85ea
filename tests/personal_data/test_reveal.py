"""Revealing an ID number or phone: to the person's cadre and the offices above, for a stated
purpose, every request audited, refusals too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException
from sqlmodel import col, select

from gridline import problems
from gridline.db import Database
from gridline.personal import Sealer
from gridline.settings import Settings
from services.assignment import sealed, storage
from services.assignment.following import Current
from services.assignment.reveal import (
    NothingToReveal,
    RevealField,
    RevealRefused,
    SealUnreadable,
    reveal,
)
from services.assignment.reveal_routes import reveal_router
from tests.personal_data.support import (
    ID_NUMBER,
    KEY,
    PHONE,
    SEALER,
    StaffMember,
    county,
    sealed_report,
)

DIRECTORY = county()
PURPOSE = "入户核查联系本人"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """Assignment's database with r-home placed at household h1 (grid g1) and r-triage left
    for community cm2 to place, both with sealed fields."""
    settings = Settings(data_dir=tmp_path)
    async with Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as database:
        async with database.session() as session:
            for report_id, node_id, grid_id in (("r-home", "h1", "g1"), ("r-triage", "cm2", "cm2")):
                storage.record_placement(
                    session,
                    report_id=report_id,
                    task_id=f"task-{report_id}",
                    node_id=node_id,
                    grid_id=grid_id,
                    triage=node_id == "cm2",
                    assignee_id="p-a",
                )
                sealed.keep(session, sealed_report(report_id))
        yield database


async def audits(db: Database) -> list[sealed.RevealAudit]:
    async with db.session() as session:
        rows = await session.exec(select(sealed.RevealAudit).order_by(col(sealed.RevealAudit.id)))
        return list(rows.all())


# (role, node, report, allowed): the cadre of the grid and the offices on the path up.
MATRIX = [
    ("cadre", "g1", "r-home", True),
    ("liaison", "g1", "r-home", True),
    ("community_staff", "cm1", "r-home", True),
    ("township_office", "t1", "r-home", True),
    ("county_office", "county", "r-home", True),
    ("community_staff", "cm2", "r-triage", True),
    ("cadre", "g2", "r-home", False),  # a cadre of the next grid
    ("liaison", "g2", "r-home", False),
    ("liaison", "cm1", "r-home", False),  # a liaison's token at a community: above its level
    ("community_staff", "cm2", "r-home", False),
    ("township_office", "t2", "r-home", False),
    ("health_centre", "t1", "r-home", False),
    ("operator", "county", "r-home", False),
    ("micro_grid_leader", "h1", "r-home", False),
    ("cadre", "g3", "r-triage", False),  # a triage case has no grid yet: no cadre
    ("county_office", "nowhere", "r-home", False),
]


async def test_reveal_is_granted_by_role_and_node_and_every_request_is_audited(
    db: Database,
) -> None:
    for n, (role, node, report_id, allowed) in enumerate(MATRIX):
        staff = StaffMember(f"s-{n}", role, node)
        for field, clear in ((RevealField.ID_NUMBER, ID_NUMBER), (RevealField.PHONE, PHONE)):
            if allowed:
                assert (
                    await reveal(
                        db,
                        DIRECTORY,
                        SEALER,
                        staff,
                        report_id=report_id,
                        field=field,
                        purpose=PURPOSE,
                    )
                    == clear
                ), (role, node)
            else:
                with pytest.raises(RevealRefused):
                    await reveal(
                        db, DIRECTORY, SEALER, staff, report_id=report_id, field=field,
                        purpose=PURPOSE,
                    )  # fmt: skip
    rows = await audits(db)
    assert len(rows) == 2 * len(MATRIX)
    for n, (role, node, report_id, allowed) in enumerate(MATRIX):
        for row, name in zip(rows[2 * n : 2 * n + 2], ("id_number", "phone"), strict=True):
            assert (row.staff_subject, row.staff_role, row.staff_node_id) == (f"s-{n}", role, node)
            assert (row.report_id, row.field, row.purpose) == (report_id, name, PURPOSE)
            assert row.outcome == ("revealed" if allowed else "refused"), (role, node)
            assert bool(row.reason) != allowed
            assert ID_NUMBER not in row.reason + row.purpose and PHONE not in row.reason


async def test_refusals_say_why_in_chinese(db: Database) -> None:
    cases = [
        (StaffMember("s", "cadre", "g2"), "不在您负责的网格（.*）范围内，不是其包户干部"),
        (StaffMember("s", "health_centre", "t1"), "卫生院无权查看身份证号和手机号"),
        (StaffMember("s", "community_staff", "cm2"), "不在您负责的.*范围内"),
        (StaffMember("s", "liaison", "cm1"), "高于其角色的层级"),
        (StaffMember("s", "county_office", "nowhere"), "不在名录中"),
    ]
    for staff, why in cases:
        with pytest.raises(RevealRefused, match=why):
            await reveal(
                db, DIRECTORY, SEALER, staff, report_id="r-home", field=RevealField.PHONE,
                purpose=PURPOSE,
            )  # fmt: skip


async def test_a_request_without_a_purpose_is_refused_and_audited(db: Database) -> None:
    cadre = StaffMember("s-cadre", "cadre", "g1")
    with pytest.raises(RevealRefused, match="请写明查看用途"):
        await reveal(
            db, DIRECTORY, SEALER, cadre, report_id="r-home", field=RevealField.PHONE, purpose=" "
        )
    [row] = await audits(db)
    assert (row.staff_subject, row.outcome, row.reason) == ("s-cadre", "refused", "请写明查看用途")


async def test_a_purpose_is_audited_scrubbed(db: Database) -> None:
    cadre = StaffMember("s-cadre", "cadre", "g1")
    await reveal(
        db, DIRECTORY, SEALER, cadre, report_id="r-home", field=RevealField.PHONE,
        purpose="打 138 1234 5678 核实",
    )  # fmt: skip
    [row] = await audits(db)
    assert "1234 5678" not in row.purpose and row.purpose.startswith("打 138")


async def test_an_unknown_report_reveals_nothing_and_is_audited(db: Database) -> None:
    county_office = StaffMember("s-county", "county_office", "county")
    with pytest.raises(NothingToReveal, match="不存在或已过保存期限删除"):
        await reveal(
            db, DIRECTORY, SEALER, county_office, report_id="r-none", field=RevealField.PHONE,
            purpose=PURPOSE,
        )  # fmt: skip
    [row] = await audits(db)
    assert (row.report_id, row.outcome) == ("r-none", "absent")


async def test_a_value_whose_key_left_the_ring_is_unreadable_and_audited(db: Database) -> None:
    cadre = StaffMember("s-cadre", "cadre", "g1")
    other = Sealer([("2027a", KEY.replace("A", "B", 1))])
    with pytest.raises(SealUnreadable, match="2026a"):
        await reveal(
            db, DIRECTORY, other, cadre, report_id="r-home", field=RevealField.ID_NUMBER,
            purpose=PURPOSE,
        )  # fmt: skip
    [row] = await audits(db)
    assert row.outcome == "unreadable"


def app_of(db: Database) -> FastAPI:
    """Assignment's reveal route with a stand-in staff dependency: `X-Staff: role@node`."""

    def staff_identity(x_staff: str = Header("")) -> StaffMember:
        if not x_staff:
            raise HTTPException(401, "未登录")
        role, _, node = x_staff.partition("@")
        return StaffMember(f"s-{role}", role, node)

    app = FastAPI()
    problems.install(app)
    app.include_router(reveal_router(SEALER, staff_identity))
    app.state.db = db
    app.state.follower = SimpleNamespace(current=Current(DIRECTORY))
    return app


async def test_the_route_answers_by_the_rule_and_keeps_no_copy_in_caches(db: Database) -> None:
    transport = httpx.ASGITransport(app=app_of(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://assignment") as client:
        body = {"field": "id_number", "purpose": PURPOSE}
        path = "/v1/reports/r-home/reveal"
        granted = await client.post(path, json=body, headers={"X-Staff": "cadre@g1"})
        assert granted.status_code == 200
        assert granted.json() == {"report_id": "r-home", "field": "id_number", "value": ID_NUMBER}
        assert granted.headers["Cache-Control"] == "no-store"

        refused = await client.post(path, json=body, headers={"X-Staff": "cadre@g2"})
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("该人员不在您负责的网格")
        assert refused.json()["rule"] == "reveal.refused"
        absent = await client.post(
            "/v1/reports/r-none/reveal", json=body, headers={"X-Staff": "cadre@g1"}
        )
        assert absent.status_code == 404
        assert (await client.post(path, json=body)).status_code == 401
        wrong_field = {"field": "address", "purpose": PURPOSE}
        assert (
            await client.post(path, json=wrong_field, headers={"X-Staff": "cadre@g1"})
        ).status_code == 422
    # Three requests reached the rule; the one without an identity never did.
    assert [row.outcome for row in await audits(db)] == ["revealed", "refused", "absent"]
