"""Household visits (入户) and visit rounds (五轮入户排摸, 敲门行动, 每周微访、每月遍访、每季查访).

A visit is one staff member at one household of the Directory at one moment, with what they
found. A round is a campaign over a grid or a community with a deadline: its coverage is the
households of the node reached during the round over the households of the node, and a round
below full coverage at its deadline goes once to the office above the node.

A household counts as reached (入户) when someone answered the door or it was found empty for
good: met, refused (the seeds' cadres filled the form at the door), moved out, a new arrival
found. Nobody home does not count: the household needs another visit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from gridline.contracts.v1 import common_pb2
from gridline.staff.identity import Forbidden, Place, Staff
from gridline.staff.roles import ROLE_ZH, Level, Permission
from gridline.timestamps import zh_time


class Outcome(StrEnum):
    """What a visit found at the household."""

    MET = "met"
    NOBODY_HOME = "nobody_home"
    REFUSED = "refused"
    MOVED_OUT = "moved_out"
    NEW_ARRIVAL = "new_arrival"


OUTCOME_ZH: dict[Outcome, str] = {
    Outcome.MET: "已见面",
    Outcome.NOBODY_HOME: "无人在家",
    Outcome.REFUSED: "拒绝配合",
    Outcome.MOVED_OUT: "已搬离",
    Outcome.NEW_ARRIVAL: "发现新来返人员",
}

# The outcomes that count towards the visit rate (入户率) and a round's coverage.
REACHED: frozenset[str] = frozenset(o.value for o in Outcome if o is not Outcome.NOBODY_HOME)

# A visit may be recorded this long after it happened (a cadre back from a day of visits in an
# area without signal), and a little ahead of the server's clock (a phone's clock runs fast).
LATE_ENTRY = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=5)

# The longest round: a quarter (每季查访).
LONGEST_ROUND = timedelta(days=92)


class VisitRefused(ValueError):
    """A visit or round that cannot be taken as given; the message says why, in Chinese."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RoundLevel(StrEnum):
    """The node a round covers."""

    GRID = "grid"
    COMMUNITY = "community"


ROUND_LEVEL_ZH: dict[RoundLevel, str] = {RoundLevel.GRID: "网格", RoundLevel.COMMUNITY: "社区"}

# The office a round of each kind goes to when it falls short: the level above its node.
ABOVE: dict[RoundLevel, int] = {
    RoundLevel.GRID: common_pb2.CHAIN_LEVEL_COMMUNITY,
    RoundLevel.COMMUNITY: common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
}

# The Place attribute (and stored column) a round's visits are counted on.
PLACE_FIELD: dict[RoundLevel, str] = {
    RoundLevel.GRID: "grid_id",
    RoundLevel.COMMUNITY: "community_id",
}

_RUNS_ROUNDS = frozenset({Level.COUNTY, Level.TOWNSHIP, Level.COMMUNITY})


def check_visit_time(visited_at: datetime, moment: datetime) -> None:
    """VisitRefused unless a visit at `visited_at` may be recorded at `moment`."""
    if visited_at > moment + CLOCK_SKEW:
        raise VisitRefused("visited_at", "入户时间晚于当前时间，请核对手机时间后重新填写")
    if visited_at < moment - LATE_ENTRY:
        raise VisitRefused(
            "visited_at",
            f"入户记录须在{LATE_ENTRY.days}天内补录，{zh_time(visited_at)}的入户已不能补录",
        )


def round_level(place: Place, node_id: str) -> RoundLevel:
    """Whether the node a round is asked for is a grid or a community; VisitRefused otherwise."""
    if place.grid_id == node_id:
        return RoundLevel.GRID
    if place.community_id == node_id and not place.grid_id:
        return RoundLevel.COMMUNITY
    raise VisitRefused("node_id", f"“{node_id}”不是网格或社区，排摸轮次只能按网格或社区开展")


def check_round_time(starts_at: datetime, deadline_at: datetime, moment: datetime) -> None:
    """VisitRefused unless a round from `starts_at` to `deadline_at` may be opened at `moment`."""
    if deadline_at <= moment:
        raise VisitRefused("deadline_at", "截止时间须晚于当前时间")
    if deadline_at <= starts_at:
        raise VisitRefused("deadline_at", "截止时间须晚于开始时间")
    if deadline_at - starts_at > LONGEST_ROUND:
        raise VisitRefused("deadline_at", f"一轮排摸最长{LONGEST_ROUND.days}天（每季查访），请缩短")
    if starts_at < moment - LATE_ENTRY:
        raise VisitRefused("starts_at", f"开始时间最早可追溯到{LATE_ENTRY.days}天前")


def check_runs_rounds(staff: Staff) -> None:
    """Forbidden unless the staff member may open rounds: community staff and the offices above
    (the liaison and cadres carry rounds out; they do not set them)."""
    staff.require(Permission.TASKS_ACT)
    if staff.level not in _RUNS_ROUNDS:
        raise Forbidden(
            f"{ROLE_ZH[staff.role]}无权布置排摸轮次：排摸轮次由社区及以上工作人员布置，"
            "网格联络员和包户干部负责入户"
        )


def coverage(visited: int, households: int | None) -> float | None:
    """Households reached over households; None when the count is unknown or the node empty."""
    return visited / households if households else None


def percent(share: float | None) -> str:
    """A share as the summaries print it (`98.9%`), or `—` when it is not known."""
    return "—" if share is None else f"{share:.1%}"


def covered(visited: int, households: int) -> bool:
    """Whether a round reached every household of its node."""
    return visited >= households


def short_round_text(
    name: str, level: RoundLevel, deadline_at: datetime, visited: int, households: int
) -> tuple[str, str]:
    """The title and body telling the office above that a round fell short at its deadline."""
    rate = percent(coverage(visited, households))
    return (
        f"{name}未完成全覆盖",
        f"「{name}」已于{zh_time(deadline_at)}截止，本{ROUND_LEVEL_ZH[level]}在册 {households} 户，"
        f"已入户 {visited} 户，入户率 {rate}，尚有 {households - visited} 户未入户"
        f"（无人在家不计入）。请督促补访，做到不漏户、不漏人。",
    )
