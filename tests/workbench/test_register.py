"""The register (台账) without HTTP: its rows from a node's tasks and their persons, the cells
the records leave empty, the sex from the ID number, and its files with formulas neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.settings import Settings
from services.escalation import storage
from services.escalation.domain import Action, TaskState
from services.escalation.register import (
    COLUMNS,
    Person,
    RegisterRefused,
    neutralised,
    sex_of,
    to_csv,
    to_xlsx,
)
from services.escalation.register_flows import Scope, register_rows

# 1月28日 in Beijing (UTC+8): the register's day.
DAY = date(2022, 1, 28)
MORNING = datetime(2022, 1, 28, 2, 0, tzinfo=UTC)


def task(task_id: str, grid: str, community: str, **values: Any) -> storage.Task:
    base: dict[str, Any] = dict(
        task_id=task_id, report_id=f"r-{task_id}", node_id=f"h-{task_id}", grid_id=grid,
        community_id=community, township_id="t1", triage=False, state=TaskState.ASSIGNED,
        level=common_pb2.CHAIN_LEVEL_CADRE, assignee_group_id="grp-a",
        assignee_level=common_pb2.CHAIN_LEVEL_CADRE, origin_risk=common_pb2.RISK_LEVEL_MEDIUM,
        summary="张* 自上海返回", report_accepted_at=MORNING, created_at=MORNING,
        assigned_at=MORNING,
    )  # fmt: skip
    return storage.Task(**(base | values))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """Tasks of community cm1 (a quarantined one visited and tested, an escalated triage one, one
    arrived the day before, one reported late for an arrival of the day) and of cm2."""
    async with Database(Settings(data_dir=tmp_path), "escalation", storage.TABLES) as database:
        async with database.session() as session:
            session.add_all([
                task("a", "g1", "cm1", state=TaskState.UNDER_CONTROL, measure="quarantine",
                     origin_risk=common_pb2.RISK_LEVEL_HIGH,
                     measure_started_at=MORNING + timedelta(hours=6),
                     measure_ends_at=MORNING + timedelta(days=14)),
                task("b", "cm1", "cm1", triage=True, state=TaskState.TRIAGE,
                     level=common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
                     assignee_level=common_pb2.CHAIN_LEVEL_COMMUNITY, origin_risk=0),
                task("yesterday", "g1", "cm1"),
                task("late", "g2", "cm1", report_accepted_at=MORNING + timedelta(days=3)),
                task("other", "g3", "cm2"),
                storage.TaskChange(change_id="c1", task_id="a", version=2,
                                   action=Action.RECORD_VISIT, from_state="acknowledged",
                                   to_state="visited", actor="王伟（包户干部，p-a）",
                                   channel="http",
                                   changed_at=MORNING + timedelta(hours=3)),
                storage.TestRecord(result_id="t1", task_id="a", test_day=1, result="negative",
                                   actor="王伟", channel="http",
                                   recorded_at=MORNING + timedelta(days=1)),
            ])  # fmt: skip
        yield database


PERSONS = {
    "r-a": Person("张建国", "620102199003071234", "13812345678", True, "上海市浦东新区",
                  MORNING, "文化苑2号楼2单元201室", "火车", "王伟"),
    "r-b": Person("李*", "**************1223", "139****0000", False, "北京市朝阳区",
                  MORNING + timedelta(hours=1), "", "", "", "三川社区"),
    "r-yesterday": Person("王*", arrived_at=MORNING - timedelta(days=1)),
    "r-late": Person("赵*", arrived_at=MORNING + timedelta(hours=2)),
}  # fmt: skip


async def source(report_ids: Collection[str]) -> Mapping[str, Person]:
    """Assignment's answer: the persons it keeps of the reports asked for."""
    return {r: PERSONS[r] for r in report_ids if r in PERSONS}


async def test_rows_are_the_nodes_arrivals_of_the_days_with_what_the_records_say(
    db: Database,
) -> None:
    rows = await register_rows(db, source, Scope("community_id", "cm1"), DAY, DAY)
    # The day's arrivals of cm1, earliest first: the late report is kept, yesterday's is not.
    assert [r.name for r in rows] == ["张建国", "李*", "赵*"]
    first, triage, late = rows
    assert first.cells() == (
        1, "张建国", "男", "620102199003071234", "13812345678", "上海市浦东新区", "1月28日 10:00",
        "火车", "文化苑2号楼2单元201室", "高风险", "居家隔离", "1月28日至2月11日", "1月29日阴性",
        "王伟", "1月28日 13:00", "管控中", "",
    )  # fmt: skip
    # A masked ID number still gives the sex (its 17th digit is among the last four).
    assert (triage.sex, triage.address, triage.risk) == ("女", "三川社区", "")
    assert triage.remarks == "地址未能对应到户，待分拣；已上报至镇联防联控办"
    # Nothing recorded, nothing written: no measure, test, visit, transport or cadre invented.
    assert (late.number, late.measure, late.dates, late.tests, late.verified, late.cadre) == (
        3, "", "", "", "", "",
    )  # fmt: skip


async def test_the_county_sees_every_node_and_a_span_is_checked(db: Database) -> None:
    rows = await register_rows(db, source, Scope("township_id", None), DAY, DAY + timedelta(2))
    assert len(rows) == 4  # cm2's task has no person: it goes by its report's day
    with pytest.raises(RegisterRefused, match="结束日期不能早于开始日期"):
        await register_rows(db, source, Scope("township_id", None), DAY, DAY - timedelta(1))
    with pytest.raises(RegisterRefused, match="一次最多导出92天"):
        await register_rows(db, source, Scope("township_id", None), DAY, DAY + timedelta(92))


async def test_the_health_centre_reads_only_people_under_a_measure(db: Database) -> None:
    rows = await register_rows(db, source, Scope("township_id", "t1"), DAY, DAY, measures_only=True)
    assert [r.name for r in rows] == ["张建国"]


def test_sex_comes_from_the_seventeenth_digit() -> None:
    assert sex_of("620102199003071234") == "男"
    assert sex_of("62010219900307124X") == "女"
    assert sex_of("**************1234") == "男"
    assert sex_of("*******78") == "" and sex_of("") == ""


FORMULAS = ["=1+1", "+86 138", "-2", "@SUM(A1)", "\tx", "\rx"]


def test_cells_that_look_like_formulas_are_neutralised() -> None:
    assert [neutralised(v) for v in FORMULAS] == [f"'{v}" for v in FORMULAS]
    assert neutralised("张建国") == "张建国"


async def test_the_files_carry_the_columns_and_write_formulas_as_text(db: Database) -> None:
    formula = dict(PERSONS)
    formula["r-a"] = Person("=HYPERLINK(\"http://x\")", address="@cmd|' /C calc'!A0",
                            arrived_at=MORNING)  # fmt: skip

    async def persons(report_ids: Collection[str]) -> Mapping[str, Person]:
        return {r: formula[r] for r in report_ids if r in formula}

    rows = await register_rows(db, persons, Scope("community_id", "cm1"), DAY, DAY)
    text = to_csv(rows)
    assert text.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(text.decode("utf-8-sig"))))
    assert tuple(table[0]) == COLUMNS and len(table) == 4
    assert table[1][1] == '\'=HYPERLINK("http://x")' and table[1][8] == "'@cmd|' /C calc'!A0"

    # In clear, an ID number and a phone stay text for the spreadsheet that opens the file.
    clear = replace(rows[1], id_number="11010519491231002X", phone="13812345678")
    [_, line] = list(csv.reader(io.StringIO(to_csv([clear]).decode("utf-8-sig"))))
    assert (line[3], line[4]) == ("\t11010519491231002X", "\t13812345678")

    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(rows, "三川社区来返人员台账"))).active
    assert sheet is not None
    assert sheet["A1"].value == "三川社区来返人员台账"
    assert tuple(c.value for c in sheet[2]) == COLUMNS
    name = sheet["B3"]
    assert (name.value, name.data_type) == ('=HYPERLINK("http://x")', "s")
    assert sheet["I3"].data_type == "s"
    assert [sheet.cell(row=r, column=1).value for r in range(3, 6)] == [1, 2, 3]
