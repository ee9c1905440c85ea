"""The daily picture page (每日情况): one's node and each node below it, today and over a span
of days, side by side, with bar charts drawn as inline SVG and a layout that prints.

The picture is always of the person's own node: a township office sees its communities, never
another township's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Annotated

import grpc
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse

from gridline.directory_client import DirectoryClient
from gridline.staff.identity import Forbidden, Staff
from gridline.staff.roles import Level, Permission
from gridline.timestamps import SHANGHAI, now
from services.escalation.picture import RISKS, arrival_bars, share_bars
from services.escalation.picture_flows import BELOW, nodes_below, picture_lines
from services.escalation.register import LONGEST_SPAN_DAYS, span_text
from services.escalation.register_flows import Scope
from services.escalation.visits import percent
from services.escalation.workbench.session import PREFIX, PageStaff, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# The span shown beside today unless another is asked for: the last two weeks.
DEFAULT_DAYS = 14
# How long the page waits for the Directory's household counts before showing 入户率 as —.
HOUSEHOLDS_WITHIN = 5.0


def _scope(staff: Staff) -> Scope:
    field = staff.place_field
    return Scope("township_id", None) if field is None else Scope(field, staff.node_id)


def _span(start: str, end: str, today: date) -> tuple[date, date]:
    """The span asked for, or the last two weeks; ValueError (in Chinese) for a bad one."""
    try:
        first = date.fromisoformat(start) if start else today - timedelta(days=DEFAULT_DAYS - 1)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise ValueError("日期无效，请按 2022-01-30 的格式填写") from None
    if last < first:
        raise ValueError("结束日期不能早于开始日期")
    if (last - first).days + 1 > LONGEST_SPAN_DAYS:
        raise ValueError(f"最多查看{LONGEST_SPAN_DAYS}天，请缩短日期范围")
    return first, last


async def _households(directory: DirectoryClient) -> Mapping[str, int] | None:
    try:
        async with asyncio.timeout(HOUSEHOLDS_WITHIN):
            return await directory.grid_households()
    except (grpc.aio.AioRpcError, TimeoutError):
        return None


@router.get("/picture", response_class=HTMLResponse)
async def picture_page(
    request: Request,
    staff: PageStaff,
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """Today and the span, a line per node below the person's node and their total."""
    moment = now()
    today = moment.astimezone(SHANGHAI).date()
    values = {"start": start, "end": end}
    try:
        staff.require(Permission.ZERO_REPORTS_READ)
        first, last = _span(start, end, today)
    except Forbidden as refused:
        return _page(request, staff, values, error=str(refused), code=status.HTTP_403_FORBIDDEN)
    except ValueError as refused:
        return _page(request, staff, values, error=str(refused), code=status.HTTP_400_BAD_REQUEST)
    directory: DirectoryClient = request.app.state.directory
    db, schedule = request.app.state.db, request.app.state.schedule
    below = await nodes_below(directory.nodes, staff.level, staff.node_id)
    households = await _households(directory)
    group = BELOW[staff.level][1]
    scope = _scope(staff)
    day = await picture_lines(db, schedule, scope, group, below, households, today, today, moment)
    span = await picture_lines(db, schedule, scope, group, below, households, first, last, moment)
    values = {"start": first.isoformat(), "end": last.isoformat()}
    return _page(
        request, staff, values, today=day, span=span, today_text=span_text(today, today),
        span_text=span_text(first, last), arrivals=arrival_bars(span),
        visits=share_bars(span, "visit_rate"), found=share_bars(span, "cadre_share"),
        compliance=share_bars(span, "compliance"),
        below_word={Level.COUNTY: "乡镇（街道）", Level.TOWNSHIP: "社区",
                    Level.COMMUNITY: "网格", Level.GRID: "网格"}[staff.level],
    )  # fmt: skip


def _page(
    request: Request,
    staff: Staff,
    values: dict[str, str],
    error: str = "",
    code: int = status.HTTP_200_OK,
    **shown: object,
) -> HTMLResponse:
    empty: dict[str, object] = {"today": [], "span": [], "today_text": "", "span_text": "",
                                "arrivals": [], "visits": [], "found": [], "compliance": [],
                                "below_word": ""}  # fmt: skip
    return render(
        request, staff, "picture.html", active="picture", title="每日情况", values=values,
        error=error, risks=RISKS, percent=percent, status_code=code, **(empty | shown),
    )  # fmt: skip
