"""Signing in and out of the workbench, and /workbench/ itself.

The sign-in page takes a staff token (`gridline staff token NAME` prints one for the local
issuer; a county's OIDC proxy passes the `Authorization` header instead and nobody sees this
page), checks it like every staff route does, and keeps it in the browser's HttpOnly,
SameSite=Strict cookie. The form itself must come from our own page (its `Origin`), so that no
other site signs a browser in under someone else's name.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gridline.staff.http import same_origin
from gridline.staff.identity import NotSignedIn
from gridline.staff.tokens import KeysUnavailable, TokenVerifier
from services.escalation.workbench.session import (
    PAGES,
    PREFIX,
    SIGN_IN,
    PageStaff,
    forget_token,
    form_fields,
    home_of,
    keep_token,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# The longest token the form takes (a JWT is well under it).
TOKEN_LENGTH = 8192


def _back_to(target: str) -> str:
    """Where to go after signing in: a workbench page only (never another site)."""
    return target if target.startswith(f"{PREFIX}/") and "//" not in target else ""


def _page(next_path: str, error: str = "", status_code: int = status.HTTP_200_OK) -> HTMLResponse:
    return PAGES.response("sign_in.html", status_code, next=next_path, error=error)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(next: str = "") -> HTMLResponse:
    """The sign-in form."""
    return _page(_back_to(next))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the token and keep it in the cookie; back to the page asked for, or one's first."""
    fields = await form_fields(request)
    next_path = _back_to(fields.get("next", ""))
    if not same_origin(request):
        return _page(next_path, "登录请求并非来自本页面，未予受理。", status.HTTP_403_FORBIDDEN)
    token = "".join(fields.get("token", "").split())
    if token.lower().startswith("bearer"):
        token = token[len("bearer") :]
    if not token or len(token) > TOKEN_LENGTH:
        return _page(next_path, "请粘贴完整的登录凭证。", status.HTTP_422_UNPROCESSABLE_CONTENT)
    verifier: TokenVerifier = request.app.state.staff_tokens
    try:
        staff = await verifier.staff(token)
    except NotSignedIn as refused:
        text = f"登录凭证无效：{refused}。请向县联防联控办重新申领。"
        return _page(next_path, text, status.HTTP_401_UNAUTHORIZED)
    except KeysUnavailable:
        text = "暂时无法核验登录凭证，请稍后再试。"
        return _page(next_path, text, status.HTTP_503_SERVICE_UNAVAILABLE)
    response = RedirectResponse(next_path or home_of(staff), status.HTTP_303_SEE_OTHER)
    keep_token(request, response, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """Clear the cookie and go back to the sign-in page."""
    response = RedirectResponse(SIGN_IN, status.HTTP_303_SEE_OTHER)
    if same_origin(request):
        forget_token(request, response)
    return response


@router.get("/")
async def workbench_home(staff: PageStaff) -> Response:
    """The person's first page."""
    return RedirectResponse(home_of(staff), status.HTTP_303_SEE_OTHER)
