"""The register page (台账): choose a node and the arrival days, see the first rows, download
the register as `.xlsx` or CSV.

The preview is always masked. A download shows names, ID numbers and phones in clear only when
the person asks for it with a purpose and assignment, which keeps the people, finds their role
may see them (the responsible cadre and the offices above); it audits that download as one row
naming the person, the purpose and the reports. The person's own token goes with the request to
assignment, so that it decides on who is asking, not on what escalation says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import date
from typing import Annotated
from urllib.parse import quote

import grpc
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from gridline.directory_client import DirectoryClient
from gridline.staff.identity import Forbidden, Staff
from gridline.staff.roles import LEVEL_ZH, Permission
from gridline.timestamps import SHANGHAI, now
from services.escalation.register import (
    COLUMNS,
    Person,
    RegisterRefused,
    Row,
    title_of,
    to_csv,
    to_xlsx,
)
from services.escalation.register_flows import Scope, person_of, register_rows
from services.escalation.workbench.session import (
    PREFIX,
    PageStaff,
    form_fields,
    render,
    staff_token,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PREVIEW_ROWS = 20
# The place column of each kind of node; the county's is none (everything).
_FIELD = {"township": "township_id", "community": "community_id", "grid": "grid_id"}
# The nodes a person may choose: their own and those of the kinds below it, by their level.
_CHOICES = {"county": ("township", "community"), "township": ("community", "grid"),
            "community": ("grid",), "grid": ()}  # fmt: skip
_MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


class PageRefused(Exception):
    """A register the page cannot give; the message says why, in Chinese."""

    def __init__(self, message: str, status_code: int = status.HTTP_400_BAD_REQUEST) -> None:
        super().__init__(message)
        self.status_code = status_code


def _reader(staff: Staff) -> bool:
    """Whether the person reads tasks at all; the health centre only those under a measure."""
    if staff.may(Permission.TASKS_READ):
        return False
    staff.require(Permission.TASKS_READ, Permission.MEASURES_READ)
    return True


def _day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PageRefused(f"{what}“{value}”不是有效日期，请按 2022-01-30 的格式填写") from None


async def _scope(directory: DirectoryClient, staff: Staff, node_id: str) -> tuple[Scope, str]:
    """The register's node (the person's own when none is chosen) and its name; PageRefused
    for one that is unknown or outside the person's node."""
    chosen = node_id or staff.node_id
    found = await directory.nodes([chosen])
    if not found:
        raise PageRefused(f"名录中没有节点“{chosen}”", status.HTTP_404_NOT_FOUND)
    node = found[0]
    if node.kind == "county":
        if staff.place_field is not None:
            raise PageRefused(f"全县台账不在您负责的{LEVEL_ZH[staff.level]}范围内", 403)
        return Scope("township_id", None), node.name
    if node.kind not in _FIELD:
        raise PageRefused("台账按乡镇、社区或网格导出，请选择其中之一")
    if not staff.covers(await directory.place(chosen)):
        raise PageRefused(f"“{node.name}”不在您负责的{LEVEL_ZH[staff.level]}范围内", 403)
    return Scope(_FIELD[node.kind], chosen), node.name


async def _choices(directory: DirectoryClient, staff: Staff) -> list[tuple[str, str]]:
    """The nodes the person may choose, their own first, as (id, name)."""
    own = await directory.nodes([staff.node_id])
    listed = [(n.node_id, n.name) for n in own]
    for kind in _CHOICES.get(own[0].kind if own else "", ()):
        below = await directory.nodes(under_node_id=staff.node_id, kind=kind)
        listed += [(n.node_id, f"　{n.name}") for n in below]
    return listed


def _persons(
    directory: DirectoryClient, token: str, reveal: bool, purpose: str
) -> Callable[[Collection[str]], Awaitable[Mapping[str, Person]]]:
    async def persons(report_ids: Collection[str]) -> Mapping[str, Person]:
        try:
            listed = await directory.persons(token, report_ids, reveal=reveal, purpose=purpose)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise PageRefused(error.details() or "无权查看", 403) from None
            raise PageRefused("人员信息暂时无法取得，请稍后再试", 503) from None
        return {p.report_id: person_of(p) for p in listed}

    return persons


async def _rows(
    request: Request,
    staff: Staff,
    node_id: str,
    start: date,
    end: date,
    reveal: bool = False,
    purpose: str = "",
) -> tuple[list[Row], str]:
    directory: DirectoryClient = request.app.state.directory
    measures_only = _reader(staff)
    scope, name = await _scope(directory, staff, node_id)
    persons = _persons(directory, staff_token(request), reveal, purpose)
    try:
        rows = await register_rows(
            request.app.state.db, persons, scope, start, end, measures_only=measures_only
        )
    except RegisterRefused as refused:
        raise PageRefused(str(refused)) from None
    return rows, title_of(name, start, end)


@router.get("/register", response_class=HTMLResponse)
async def register_page(
    request: Request,
    staff: PageStaff,
    node: Annotated[str, Query(max_length=64)] = "",
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    """The form and a masked preview of the register's first rows."""
    today = now().astimezone(SHANGHAI).date()
    values = {"node": node or staff.node_id, "start": start or today.isoformat(),
              "end": end or today.isoformat()}  # fmt: skip
    rows: list[Row] = []
    title, error, status_code = "", "", status.HTTP_200_OK
    try:
        _reader(staff)
        first, last = _day(values["start"], "开始日期"), _day(values["end"], "结束日期")
        rows, title = await _rows(request, staff, node, first, last)
    except Forbidden as refused:
        error, status_code = str(refused), status.HTTP_403_FORBIDDEN
    except PageRefused as refused:
        error, status_code = str(refused), refused.status_code
    return render(
        request, staff, "register.html", active="register", title="台账",
        columns=COLUMNS, rows=rows[:PREVIEW_ROWS], count=len(rows), heading=title,
        choices=await _choices(request.app.state.directory, staff), values=values,
        error=error, may_reveal=staff.may(Permission.TASKS_READ), status_code=status_code,
    )  # fmt: skip


@router.post("/register/download")
async def download(request: Request, staff: PageStaff) -> Response:
    """The register as a file (`format`: xlsx or csv); names, ID numbers and phones in clear
    when `reveal` is asked with a `purpose` and assignment allows it, masked otherwise."""
    fields = await form_fields(request)
    reveal = fields.get("reveal") == "1"
    purpose = fields.get("purpose", "")[:200]
    kind = fields.get("format", "xlsx")
    try:
        _reader(staff)
        if kind not in _MEDIA:
            raise PageRefused("导出格式只能是 xlsx 或 csv")
        if reveal and len(purpose) < 2:
            raise PageRefused("导出明文身份信息须写明用途")
        start = _day(fields.get("start", ""), "开始日期")
        end = _day(fields.get("end", ""), "结束日期")
        rows, title = await _rows(request, staff, fields.get("node", ""), start, end, reveal,
                                  f"导出台账：{purpose}" if reveal else "")  # fmt: skip
    except Forbidden as refused:
        return _refused(request, staff, str(refused), status.HTTP_403_FORBIDDEN)
    except PageRefused as refused:
        return _refused(request, staff, str(refused), refused.status_code)
    # Writing thousands of rows takes a few hundred milliseconds: off the event loop.
    body = await asyncio.to_thread(to_xlsx, rows, title) if kind == "xlsx" else to_csv(rows)
    filename = quote(f"{title}.{kind}")
    return Response(
        body,
        media_type=_MEDIA[kind],
        headers={
            "Content-Disposition": f"attachment; filename=register.{kind}; "
            f"filename*=UTF-8''{filename}",
            # A register may hold people's names, ID numbers and phones: no cache keeps it.
            "Cache-Control": "no-store",
        },
    )


def _refused(request: Request, staff: Staff, message: str, status_code: int) -> HTMLResponse:
    return render(
        request, staff, "register_refused.html", active="register", title="台账",
        message=message, status_code=status_code,
    )  # fmt: skip
