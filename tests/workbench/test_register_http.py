"""The register over HTTP: the real assignment and escalation apps (real SQLite, the local
issuer, the Directory over gRPC on loopback); each role downloads the `.xlsx`, opened here with
openpyxl: its rows, its columns, its masking, a formula written as text, the reveal audited."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

import httpx
import openpyxl
import pytest
from sqlmodel import select

from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.staff.roles import Role
from gridline.timestamps import SHANGHAI, now, to_timestamp
from services.assignment import sealed
from services.assignment import storage as assignment_storage
from services.assignment.app import create_app as assignment_app
from services.escalation import storage as escalation_storage
from services.escalation.app import create_app as escalation_app
from services.escalation.domain import TaskState
from services.escalation.register import COLUMNS
from tests.intake.local import local_settings, started
from tests.personal_data.support import sealed_report
from tests.staff.county import A, B, C, Spot, county
from tests.staff.tokens import bearer

_NOW = now()
TODAY = _NOW.astimezone(SHANGHAI).date()
# The arrivals' moment: half an hour ago, or midnight in Shanghai when that was still yesterday
# (the register and its page are asked for today).
MOMENT = max(_NOW - timedelta(minutes=30), datetime.combine(TODAY, time(), SHANGHAI))
ID_A = "620102199003071234"


@dataclass
class Running:
    escalation: httpx.AsyncClient
    assignment_db: Database
    data_dir: Path


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    data_dir = tmp_path_factory.mktemp("register-http")
    settings = local_settings(Settings(data_dir=data_dir))
    settings = settings.model_copy(
        update={"directory_target": f"127.0.0.1:{settings.directory_grpc_port}"}
    )
    with pytest.MonkeyPatch.context() as patch:
        async with (
            started(assignment_app, settings, patch) as (_, assignment, _),
            started(escalation_app, settings, patch) as (escalation_http, escalation, _),
        ):
            async with assignment.state.db.session() as session:
                await assignment_storage.replace_directory(session, county())
            await assignment.state.follower.refresh()
            await _arrivals(settings, assignment.state.db, escalation.state.db)
            yield Running(escalation_http, assignment.state.db, data_dir)


ARRIVALS: list[tuple[str, Spot, str, str | None]] = [
    ("a1", A, "张建国", "quarantine"),
    ("a2", A, '=HYPERLINK("http://evil")', None),
    ("b1", B, "李秀英", "monitoring"),
    ("c1", C, "王芳", None),
]


async def _arrivals(settings: Settings, assignment_db: Database, escalation_db: Database) -> None:
    """Four arrivals of today, placed in A, A, B and C, as assignment and escalation keep them."""
    sealer = Sealer.from_settings(settings)
    async with assignment_db.session() as session:
        for n, (key, spot, name, _) in enumerate(ARRIVALS):
            assignment_storage.record_placement(
                session, report_id=f"r-{key}", task_id=f"k-{key}", node_id=spot.household,
                grid_id=spot.place.grid_id, triage=False, assignee_id=spot.cadre,
            )  # fmt: skip
            report = sealed_report(f"r-{key}", sealer)
            report.name_sealed = sealer.seal(name, "name")
            report.name_masked = name[0] + "*" * (len(name) - 1)
            report.arrived_at.CopyFrom(to_timestamp(MOMENT + timedelta(seconds=n)))
            report.origin_name, report.transport = "上海市浦东新区", "自驾"
            report.address = "@cmd" if key == "a2" else f"{spot.place.grid_id}小区1号楼"
            sealed.keep(session, report)
    async with escalation_db.session() as session:
        for key, spot, _, measure in ARRIVALS:
            session.add(
                escalation_storage.Task(
                    task_id=f"k-{key}", report_id=f"r-{key}", node_id=spot.household,
                    grid_id=spot.place.grid_id, community_id=spot.place.community_id,
                    township_id=spot.place.township_id, triage=False,
                    state=TaskState.UNDER_CONTROL if measure else TaskState.ASSIGNED,
                    level=common_pb2.CHAIN_LEVEL_CADRE, assignee_group_id=f"grp-{spot.cadre}",
                    assignee_level=common_pb2.CHAIN_LEVEL_CADRE,
                    origin_risk=common_pb2.RISK_LEVEL_MEDIUM, measure=measure,
                    summary="某* 自上海返回", report_accepted_at=MOMENT, created_at=MOMENT,
                    assigned_at=MOMENT,
                )
            )  # fmt: skip


async def download(
    running: Running, role: Role, node: str, *, reveal: bool = False, target: str = ""
) -> httpx.Response:
    day = TODAY.isoformat()
    form = {"node": target, "start": day, "end": day, "format": "xlsx"}
    if reveal:
        form |= {"reveal": "1", "purpose": "报送县联防联控办核对"}
    return await running.escalation.post(
        "/workbench/register/download", data=form, headers=bearer(running.data_dir, role, node)
    )


def sheet_rows(answer: httpx.Response) -> list[tuple[object, ...]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1] == COLUMNS
    return rows[2:]


async def test_each_role_downloads_its_nodes_register_masked_or_revealed(
    running: Running,
) -> None:
    # Community A's staff, asking with a purpose: its two arrivals, in clear, audited once.
    rows = sheet_rows(await download(running, Role.COMMUNITY_STAFF, "cmA", reveal=True))
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (1, "张建国", "男", ID_A, "13812345678"),
        (2, '=HYPERLINK("http://evil")', "男", ID_A, "13812345678"),
    ]
    assert rows[0][5:8] == ("上海市浦东新区", rows[0][6], "自驾")
    assert rows[0][10] == "居家隔离" and rows[0][15] == "管控中"
    async with running.assignment_db.session() as session:
        audits = list((await session.exec(select(sealed.RevealAudit))).all())
    assert [(a.staff_name, a.staff_role, a.reports) for a in audits] == [
        ("测试社区工作人员", "community_staff", 2)
    ]
    assert audits[0].purpose == "导出台账：报送县联防联控办核对"

    # Without asking: masked, and nothing audited.
    rows = sheet_rows(await download(running, Role.COMMUNITY_STAFF, "cmA"))
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("张**", "**************1234", "138****5678"),
        ("=" + "*" * (len(ARRIVALS[1][2]) - 1), "**************1234", "138****5678"),
    ]
    # The township sees its two communities, never C; the county everything.
    assert len(sheet_rows(await download(running, Role.TOWNSHIP_OFFICE, "t1"))) == 3
    assert len(sheet_rows(await download(running, Role.COUNTY_OFFICE, "c"))) == 4
    # The health centre: people under a measure in its township, masked whatever it asks.
    rows = sheet_rows(await download(running, Role.HEALTH_CENTRE, "t1"))
    assert [(r[1], r[3]) for r in rows] == [
        ("张**", "**************1234"),
        ("李**", "**************1234"),
    ]
    refused = await download(running, Role.HEALTH_CENTRE, "t1", reveal=True)
    assert refused.status_code == 403 and "卫生院无权查看姓名、身份证号和手机号" in refused.text
    async with running.assignment_db.session() as session:
        audits = list((await session.exec(select(sealed.RevealAudit))).all())
    # The refusal is audited beside the community's register, and revealed nobody.
    assert [(a.staff_role, a.outcome, a.reports) for a in audits] == [
        ("community_staff", "revealed", 2), ("health_centre", "refused", 0),
    ]  # fmt: skip


async def test_a_node_outside_ones_own_is_refused_and_formulas_stay_text(
    running: Running,
) -> None:
    refused = await download(running, Role.COMMUNITY_STAFF, "cmA", target="cmB")
    assert refused.status_code == 403 and "不在您负责的社区范围内" in refused.text
    answer = await download(running, Role.COMMUNITY_STAFF, "cmA", reveal=True)
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    assert (sheet["B4"].value, sheet["B4"].data_type) == ('=HYPERLINK("http://evil")', "s")
    assert (sheet["I4"].value, sheet["I4"].data_type) == ("@cmd", "s")
    csv = await running.escalation.post(
        "/workbench/register/download",
        data={"start": TODAY.isoformat(), "end": TODAY.isoformat(), "format": "csv"},
        headers=bearer(running.data_dir, Role.COMMUNITY_STAFF, "cmA"),
    )
    text = csv.content.decode("utf-8")
    assert text.startswith("\ufeff序号,姓名,性别,身份证号") and "'@cmd" in text
    page = await running.escalation.get(
        "/workbench/register", headers=bearer(running.data_dir, Role.COMMUNITY_STAFF, "cmA")
    )
    assert page.status_code == 200 and "共 2 人" in page.text and "张**" in page.text
    assert "张建国" not in page.text


async def test_the_daily_picture_shows_the_nodes_below_ones_own(running: Running) -> None:
    page = await running.escalation.get(
        "/workbench/picture", headers=bearer(running.data_dir, Role.TOWNSHIP_OFFICE, "t1")
    )
    assert page.status_code == 200, page.text
    # t1's communities side by side, never t2's; the charts inline.
    assert "A社区" in page.text and "B社区" in page.text and "C社区" not in page.text
    assert page.text.count("<svg") == 4 and "@media print" in page.text
    refused = await running.escalation.get(
        "/workbench/picture", headers=bearer(running.data_dir, Role.CADRE, "gA")
    )
    assert refused.status_code == 403 and "包户干部无权查看每日零报告" in refused.text
