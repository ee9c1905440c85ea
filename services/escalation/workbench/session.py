"""The signed-in staff person of a workbench page, the page's navigation and its rendering.

A page route takes `staff: Annotated[Staff, Depends(page_staff)]`: the person of the request's
staff token (the `STAFF_COOKIE` the sign-in page set, or the `Authorization` header an OIDC
proxy passes), checked by `gridline.staff.http.signed_in` like every staff route. Without a
token that holds, the browser is sent to the sign-in page and back afterwards. A page answers
with `render(staff, "x.html", active="key", title=...)`: `base.html` with the person, the
navigation their role sees and the page's own values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request, status
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from starlette.exceptions import HTTPException

from gridline.pages import Pages
from gridline.problems import ProblemError
from gridline.staff.http import STAFF_COOKIE, bearer, signed_in
from gridline.staff.identity import Staff
from gridline.staff.roles import ROLE_ZH, Level, Permission
from services.escalation.workbench.names import NodeNames

PREFIX = "/workbench"
SIGN_IN = f"{PREFIX}/sign-in"
PAGES = Pages(Path(__file__).parent / "templates")
# How long the browser keeps the token; the token's own expiry decides before that.
COOKIE_SECONDS = 12 * 3600
OFFICE_LEVELS = frozenset({Level.COUNTY, Level.TOWNSHIP, Level.COMMUNITY})


@dataclass(frozen=True)
class NavItem:
    """One entry of the navigation: its key (a page's `active`), label, path, and who sees it."""

    key: str
    label: str
    path: str
    shown: Callable[[Staff], bool]


def reads_tasks(staff: Staff) -> bool:
    """Whether the person reads tasks at all (all of them, or those under a measure)."""
    return staff.may(Permission.TASKS_READ) or staff.may(Permission.MEASURES_READ)


def _office(staff: Staff) -> bool:
    return staff.level in OFFICE_LEVELS and staff.may(Permission.TASKS_READ)


def triages(staff: Staff) -> bool:
    """Whether the person's office places triage tasks by hand."""
    return staff.level in OFFICE_LEVELS and staff.may(Permission.TASKS_REASSIGN)


def in_grid(staff: Staff) -> bool:
    """Whether the person works in a grid (a cadre or a liaison)."""
    return staff.level is Level.GRID


def _reads_reports(staff: Staff) -> bool:
    return staff.may(Permission.ZERO_REPORTS_READ)


NAV: tuple[NavItem, ...] = (
    NavItem("tasks", "任务", f"{PREFIX}/tasks", reads_tasks),
    NavItem("triage", "分拣", f"{PREFIX}/triage", triages),
    NavItem("register", "台账", f"{PREFIX}/register", _office),
    NavItem("picture", "每日情况", f"{PREFIX}/picture", _reads_reports),
    NavItem("zero_report", "零报告", f"{PREFIX}/zero-report", in_grid),
    NavItem("arrival", "来人登记", f"{PREFIX}/arrival", in_grid),
)


def nav_for(staff: Staff) -> list[NavItem]:
    """The entries the person's role sees."""
    return [item for item in NAV if item.shown(staff)]


def home_of(staff: Staff) -> str:
    """Where the person lands after signing in: their first entry."""
    entries = nav_for(staff)
    return entries[0].path if entries else f"{PREFIX}/tasks"


class SignInNeeded(HTTPException):
    """No staff token that holds: the browser goes to the sign-in page, then back to `path`."""

    def __init__(self, path: str) -> None:
        super().__init__(
            status.HTTP_303_SEE_OTHER,
            "请先登录",
            headers={"Location": f"{SIGN_IN}?next={quote(path, safe='/')}"},
        )


async def page_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Staff:
    """The signed-in person of a page (its cookie or bearer header); to the sign-in page without
    a token that holds. A cross-origin POST and a down issuer stay refusals."""
    try:
        staff = await signed_in(request, credentials)
    except ProblemError as refused:
        if refused.status_code != status.HTTP_401_UNAUTHORIZED:
            raise
        path = request.url.path if request.method == "GET" else home_path(request)
        raise SignInNeeded(path) from None
    await names_of(request).load([staff.node_id])  # for the header
    return staff


def names_of(request: Request) -> NodeNames:
    """The app's node names (`names.NodeNames`, set up by escalation's app)."""
    names: NodeNames = request.app.state.workbench_names
    return names


def home_path(request: Request) -> str:
    """The page a POST came from when it is one of ours (its Referer), the workbench otherwise."""
    referer = request.headers.get("referer", "")
    start = referer.find(PREFIX + "/")
    return referer[start:].split("?")[0] if start >= 0 else f"{PREFIX}/tasks"


PageStaff = Annotated[Staff, Depends(page_staff)]


def who(staff: Staff, node_name: str = "") -> str:
    """How the header names the person: name, role and node (its name when known)."""
    where = f" · {node_name}" if node_name else ""
    return f"{staff.name} · {ROLE_ZH[staff.role]}{where}"


def render(
    request: Request,
    staff: Staff,
    name: str,
    *,
    active: str,
    title: str,
    status_code: int = status.HTTP_200_OK,
    **values: object,
) -> HTMLResponse:
    """The page `name` (extending `base.html`) for the signed-in person, its entry `active`."""
    return PAGES.response(
        name,
        status_code,
        title=title,
        me=who(staff, names_of(request).known(staff.node_id)),
        nav=nav_for(staff),
        active=active,
        **values,
    )


def keep_token(request: Request, response: Response, token: str) -> None:
    """Set the cookie that signs the browser in: HttpOnly, SameSite=Strict, Secure over https."""
    response.set_cookie(
        STAFF_COOKIE,
        token,
        max_age=COOKIE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget_token(request: Request, response: Response) -> None:
    """Clear the sign-in cookie."""
    response.delete_cookie(
        STAFF_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def staff_token(request: Request) -> str:
    """The person's own staff token as the request carried it (header, else the cookie), for
    a service that checks it again."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[len("bearer ") :].strip()
    return request.cookies.get(STAFF_COOKIE, "")


async def form_fields(request: Request) -> dict[str, str]:
    """A plain form post's fields (each one's first value, trimmed); {} for any other body."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    fields = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    return {name: values[0].strip() for name, values in fields.items()}
