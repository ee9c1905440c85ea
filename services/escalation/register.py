"""The register (台账) offices exchange: its columns, its rows, and the files they download.

A row is one task (one arrival's case) with its person as assignment lists them for the person
asking: in clear for those who may reveal them, masked for everyone else. Cells are only what
the records say: a test not recorded, a measure not started, a visit not made leave their cell
empty. The files are `.xlsx` (written row by row, so that a season's register stays small in
memory) and CSV in UTF-8 with a byte-order mark, which Excel needs to read Chinese. A cell that
a spreadsheet would take for a formula is neutralised (OWASP, CSV injection): in CSV it gets a
leading apostrophe, in `.xlsx` it is written as a string.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import date, datetime

import xlsxwriter

from gridline.contracts.enums import CHAIN_LEVEL_ZH, risk_zh
from gridline.timestamps import SHANGHAI, zh_date, zh_time
from services.escalation.domain import MEASURE_ZH, STATE_LABELS, TEST_RESULT_ZH, Measure

COLUMNS: tuple[str, ...] = (
    "序号", "姓名", "性别", "身份证号", "联系电话", "来源地", "到达时间", "交通方式", "现住址",
    "风险等级", "管控措施", "起止日期", "核酸检测", "包户干部", "核实时间", "当前状态", "备注",
)  # fmt: skip

# What a spreadsheet reads as the start of a formula (OWASP: CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Cells of digits a spreadsheet would read as a number: an 18-digit ID number past the 15th
# digit is lost to it once the file is saved. A leading tab keeps them text.
_DIGIT_COLUMNS = (COLUMNS.index("身份证号"), COLUMNS.index("联系电话"))
# Columns as wide as their usual content, in characters.
_WIDTHS = (6, 10, 5, 20, 13, 24, 13, 9, 36, 8, 14, 16, 24, 10, 13, 14, 24)
# The longest span a register covers: a return-travel season and a little more.
LONGEST_SPAN_DAYS = 92


class RegisterRefused(ValueError):
    """A register that cannot be made as asked; the message says why, in Chinese."""


@dataclass(frozen=True, slots=True)
class Person:
    """A task's person as assignment lists them for the person asking (masked or in clear)."""

    name: str = ""
    id_number: str = ""
    phone: str = ""
    revealed: bool = False
    origin_name: str = ""
    arrived_at: datetime | None = None
    address: str = ""
    transport: str = ""
    cadre_name: str = ""
    place_name: str = ""


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What escalation knows of one task, as the register reads it."""

    task_id: str
    report_id: str
    state: str
    triage: bool
    origin_risk: int
    measure: str | None
    measure_name: str
    measure_started_at: datetime | None
    measure_ends_at: datetime | None
    report_accepted_at: datetime
    level: int
    assignee_level: int


@dataclass(frozen=True, slots=True)
class Test:
    """A test result recorded for a task."""

    recorded_at: datetime
    result: str


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the register, its cells in the order of `COLUMNS`."""

    number: int
    name: str
    sex: str
    id_number: str
    phone: str
    origin: str
    arrived: str
    transport: str
    address: str
    risk: str
    measure: str
    dates: str
    tests: str
    cadre: str
    verified: str
    state: str
    remarks: str

    def cells(self) -> tuple[object, ...]:
        """The row's values in column order."""
        return astuple(self)


def check_span(start: date, end: date) -> None:
    """RegisterRefused unless `start`..`end` (both included) is a span a register covers."""
    if end < start:
        raise RegisterRefused("结束日期不能早于开始日期")
    if (end - start).days + 1 > LONGEST_SPAN_DAYS:
        raise RegisterRefused(f"一次最多导出{LONGEST_SPAN_DAYS}天的台账，请缩短日期范围")


def sex_of(id_number: str) -> str:
    """男 or 女 from a resident ID number's 17th digit (odd male, even female), in clear or
    masked (a mask keeps the last four characters, the 17th among them); empty otherwise."""
    if len(id_number) != 18 or not id_number[16].isdigit():
        return ""
    return "男" if int(id_number[16]) % 2 else "女"


def neutralised(value: str) -> str:
    """A cell's text that no spreadsheet runs as a formula: a leading apostrophe before one
    that starts like a formula (= + - @, a tab or a carriage return)."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def arrived_in(person: Person | None, facts: TaskFacts, start: date, end: date) -> bool:
    """Whether a task's arrival falls on a day from `start` to `end` (Beijing time); a task
    whose person assignment does not list goes by the day its report was accepted."""
    return start <= _arrival(person, facts).astimezone(SHANGHAI).date() <= end


def _arrival(person: Person | None, facts: TaskFacts) -> datetime:
    """When the person arrived, else when their report was accepted."""
    return person.arrived_at if person and person.arrived_at else facts.report_accepted_at


def rows_of(
    tasks: Iterable[TaskFacts],
    persons: Mapping[str, Person],
    visited: Mapping[str, datetime],
    tests: Mapping[str, Sequence[Test]],
) -> list[Row]:
    """The register's rows, earliest arrival first: each task with its person (by report id),
    its first visit and its tests; a cell the records do not fill stays empty."""

    def arrival(facts: TaskFacts) -> tuple[datetime, str]:
        return _arrival(persons.get(facts.report_id), facts), facts.task_id

    rows = []
    for number, facts in enumerate(sorted(tasks, key=arrival), start=1):
        person = persons.get(facts.report_id, Person())
        rows.append(
            Row(
                number=number,
                name=person.name,
                sex=sex_of(person.id_number),
                id_number=person.id_number,
                phone=person.phone,
                origin=person.origin_name,
                arrived=zh_time(person.arrived_at) if person.arrived_at else "",
                transport=person.transport,
                address=person.address or person.place_name,
                risk=risk_zh(facts.origin_risk) if facts.origin_risk else "",
                measure=_measure(facts),
                dates=_dates(facts),
                tests="；".join(_test(t) for t in tests.get(facts.task_id, ())),
                cadre=person.cadre_name,
                verified=zh_time(visited[facts.task_id]) if facts.task_id in visited else "",
                state=STATE_LABELS.get(facts.state, facts.state),
                remarks=_remarks(facts),
            )
        )
    return rows


# A recorded test result's words, by its stored value.
_TEST_SAID = {str(result): label for result, label in TEST_RESULT_ZH.items()}


def _test(test: Test) -> str:
    """`1月29日阴性`."""
    said = _TEST_SAID.get(test.result, test.result)
    return f"{zh_date(test.recorded_at.astimezone(SHANGHAI))}{said}"


def _measure(facts: TaskFacts) -> str:
    if facts.measure in MEASURE_ZH:
        return MEASURE_ZH[Measure(facts.measure)]
    return facts.measure_name


def _dates(facts: TaskFacts) -> str:
    if facts.measure_started_at is None:
        return ""
    begun = zh_date(facts.measure_started_at.astimezone(SHANGHAI))
    if facts.measure_ends_at is None:
        return f"{begun}起"
    return f"{begun}至{zh_date(facts.measure_ends_at.astimezone(SHANGHAI))}"


def _remarks(facts: TaskFacts) -> str:
    said = []
    if facts.triage:
        said.append("地址未能对应到户，待分拣")
    if facts.level > facts.assignee_level and facts.level in CHAIN_LEVEL_ZH:
        said.append(f"已上报至{CHAIN_LEVEL_ZH[facts.level]}")
    return "；".join(said)


def to_csv(rows: Iterable[Row]) -> bytes:
    """The register as CSV: UTF-8 with a byte-order mark, formula cells neutralised, ID numbers
    and phones in clear kept as text (a leading tab) for spreadsheets that open it."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        cells = [cell if isinstance(cell, int) else neutralised(str(cell)) for cell in row.cells()]
        for column in _DIGIT_COLUMNS:
            value = str(cells[column])
            if value[:17].isdigit():
                cells[column] = "\t" + value
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def to_xlsx(rows: Iterable[Row], title: str) -> bytes:
    """The register as an `.xlsx` workbook: a title line, the header, a row per task; every
    text cell written as a string (never a formula), row by row (constant memory)."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"constant_memory": True, "strings_to_formulas": False})
    sheet = workbook.add_worksheet("台账")
    bold = workbook.add_format({"bold": True, "bg_color": "#F2F3F5", "border": 1})
    heading = workbook.add_format({"bold": True, "font_size": 14})
    for column, width in enumerate(_WIDTHS):
        sheet.set_column(column, column, width)
    sheet.freeze_panes(2, 0)
    sheet.write_string(0, 0, title, heading)
    for column, name in enumerate(COLUMNS):
        sheet.write_string(1, column, name, bold)
    for line, row in enumerate(rows, start=2):
        for column, cell in enumerate(row.cells()):
            if isinstance(cell, int):
                sheet.write_number(line, column, cell)
            elif cell:
                sheet.write_string(line, column, str(cell))
    workbook.close()
    return buffer.getvalue()


def span_text(start: date, end: date) -> str:
    """`1月28日至2月5日`, or one day's `1月30日`."""
    return zh_date(start) if start == end else f"{zh_date(start)}至{zh_date(end)}"


def title_of(place: str, start: date, end: date) -> str:
    """The register's title line: `三和社区来返人员台账（1月28日至1月30日）`."""
    return f"{place}来返人员台账（{span_text(start, end)}）"
