"""The daily zero-report (每天零报告): due times, who is told of a missing one, the roll-up.

Every grid reports every day, zero included; a missing report goes to the community at the due
time and to the township office an hour later; reports are summed level by level.

What a grid types is its own count of the day (new arrivals, people under a measure, fevers).
The visit rate (入户率) and the share of arrivals found by cadres are never typed: they come
from the records (`Records`: the day's household visits, the day's reports and their sources)
and are summed level by level beside the typed counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta

from gridline.contracts.v1 import common_pb2
from gridline.timestamps import SHANGHAI, zh_date
from services.escalation.visits import coverage, percent

SUMMARY_LEVELS = (
    common_pb2.CHAIN_LEVEL_COMMUNITY,
    common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
    common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
)


@dataclass(frozen=True)
class RosterGrid:
    """A grid that must report, its households and the office groups above it."""

    grid_id: str
    grid_name: str
    households: int | None  # None while the Directory's count cannot be had
    offices: Mapping[int, common_pb2.Responsible]  # by ChainLevel: community, township, county


@dataclass(frozen=True)
class Counts:
    """What a grid reports for a day, and what levels sum."""

    arrivals: int = 0
    under_control: int = 0
    abnormal: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class Records:
    """What the records say of one grid and day, and what levels sum: households reached by a
    visit (`visits.REACHED`), reports registered (tasks, by the day their report was accepted)
    and those of them found by a cadre's visit (their report's source)."""

    households_visited: int = 0
    arrivals: int = 0
    found_by_cadres: int = 0

    def __add__(self, other: Records) -> Records:
        return Records(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class Schedule:
    """When a day's report is due (Asia/Shanghai) and when the township hears of a missing one."""

    due: time
    township_after: timedelta

    def day_of(self, moment: datetime) -> date:
        """The reporting day (Shanghai calendar) a moment belongs to."""
        return moment.astimezone(SHANGHAI).date()

    def due_at(self, day: date) -> datetime:
        """When the day's reports are due."""
        return datetime.combine(day, self.due, SHANGHAI)

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """The reporting day as a span of time: its first moment and the next day's."""
        start = datetime.combine(day, time(0), SHANGHAI)
        return start, start + timedelta(days=1)

    def township_at(self, day: date) -> datetime:
        """When missing reports go on to the township office."""
        return self.due_at(day) + self.township_after


@dataclass
class Summary:
    """One office group's roll-up of a day."""

    office: common_pb2.Responsible
    counts: Counts = field(default_factory=Counts)
    records: Records = field(default_factory=Records)
    households: int | None = 0  # None when some grid's count is unknown
    expected: int = 0
    missing: list[str] = field(default_factory=list)  # grid names

    @property
    def reported(self) -> int:
        """How many of its grids reported."""
        return self.expected - len(self.missing)

    @property
    def visit_rate(self) -> float | None:
        """Households visited over households in its grids (入户率); None when not known."""
        return coverage(self.records.households_visited, self.households)

    @property
    def cadre_share(self) -> float | None:
        """The share of the arrivals registered that cadres found door to door."""
        records = self.records
        return records.found_by_cadres / records.arrivals if records.arrivals else None


def missing_by_office(
    roster: Iterable[RosterGrid], reported: set[str], level: int
) -> dict[str, tuple[common_pb2.Responsible, list[RosterGrid]]]:
    """The grids without a report, grouped by their office group at `level`."""
    found: dict[str, tuple[common_pb2.Responsible, list[RosterGrid]]] = {}
    for grid in roster:
        office = grid.offices.get(level)
        if grid.grid_id in reported or office is None:
            continue
        found.setdefault(office.group_id, (office, []))[1].append(grid)
    return found


def roll_up(
    roster: Iterable[RosterGrid],
    reports: Mapping[str, Counts],
    records: Mapping[str, Records] | None = None,
) -> list[Summary]:
    """One summary per office group at each summary level, community first.

    A missing report counts as missing, not as zero: it adds nothing and is named. The records
    of every grid count, reported or not, and so do its households towards the visit rate's
    base; one grid's unknown count leaves its offices' rates unknown rather than wrong.
    """
    records = records or {}
    summaries: dict[tuple[int, str], Summary] = {}
    for grid in roster:
        for level in SUMMARY_LEVELS:
            office = grid.offices.get(level)
            if office is None:
                continue
            summary = summaries.setdefault((level, office.group_id), Summary(office))
            summary.expected += 1
            if summary.households is not None:
                summary.households = (
                    None if grid.households is None else summary.households + grid.households
                )
            summary.records += records.get(grid.grid_id, Records())
            if grid.grid_id in reports:
                summary.counts += reports[grid.grid_id]
            else:
                summary.missing.append(grid.grid_name)
    return [summaries[key] for key in sorted(summaries)]


def summary_text(summary: Summary, day: date) -> tuple[str, str]:
    """The title and body of a summary, in Chinese: the grids' typed counts, then the visit
    rate and the cadre-found share from the records, at every level."""
    counts, records = summary.counts, summary.records
    base = (
        "在册户数暂缺"
        if summary.households is None
        else f"{records.households_visited}/{summary.households} 户"
    )
    lines = [
        f"应报网格 {summary.expected} 个，已报 {summary.reported} 个，"
        f"未报 {len(summary.missing)} 个。",
        f"各网格报送：新增来返 {counts.arrivals} 人，在管 {counts.under_control} 人，"
        f"异常 {counts.abnormal} 人。",
        f"入户记录：当日入户 {records.households_visited} 户，"
        f"入户率 {percent(summary.visit_rate)}（{base}，无人在家不计入）。",
        f"当日登记来返 {records.arrivals} 人，其中包户干部入户排查发现 "
        f"{records.found_by_cadres}/{records.arrivals} 人，占 {percent(summary.cadre_share)}，"
        f"其余来自数据推送、主动报备、卡口和邻里报告。",
    ]
    if summary.missing:
        lines.append("未报网格：" + "、".join(summary.missing))
    return f"{zh_date(day)}零报告汇总", "\n".join(lines)


def missing_text(grids: list[RosterGrid], day: date, township: bool) -> tuple[str, str]:
    """The title and body telling an office of the grids that did not report."""
    names = "、".join(g.grid_name for g in grids)
    when = "截止后一小时仍" if township else "截止时"
    return (
        f"{zh_date(day)}零报告未报",
        f"{when}未收到以下 {len(grids)} 个网格的零报告：{names}。请督促网格即时上报。",
    )
