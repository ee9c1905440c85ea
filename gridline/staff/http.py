"""Staff identity on HTTP routes: the bearer token checked (401), the role's permission (403).

A staff route takes `Annotated[Staff, Depends(requires(Permission.X))]`; the scope of what it
touches is checked in the route once that is loaded (`forbidden` turns the refusal into the
403). The app keeps its verifier in `app.state.staff_tokens` (`TokenVerifier`). The scheme is
in each route's OpenAPI `security`, so the access-matrix test and API clients see which routes
need a token.

A browser (the staff workbench) keeps the same token in the `STAFF_COOKIE` cookie (HttpOnly,
SameSite=Strict) instead of the header; a request that changes something with the cookie alone
must come from a page of the same origin (its `Origin` header names the host), so that another
site cannot act in the person's name (`staff.cross_origin`).

Each refusal is a problem (`gridline.problems`) with its rule: `staff.unauthenticated` (no
token), `staff.token_invalid` (one that does not hold), `staff.forbidden` (the role may not),
`staff.out_of_scope` (the thing is outside the staff member's node), `staff.keys_unavailable`
(503: the issuer's keys cannot be had).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gridline.problems import ProblemError
from gridline.staff.identity import Forbidden, NotSignedIn, Staff
from gridline.staff.roles import Permission
from gridline.staff.tokens import KeysUnavailable, TokenVerifier

# How long a client waits before retrying when the issuer's keys cannot be had.
RETRY_AFTER_SECONDS = "5"

# The refusals every staff route may answer, for its OpenAPI `responses`.
STAFF_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No staff token, or one that does not hold (expired, wrong issuer)."},
    403: {"description": "The role may not do this, or the thing is outside the staff's node."},
}

# The cookie a browser keeps the staff token in (set by the workbench's sign-in page).
STAFF_COOKIE = "gridline_staff"
# The methods that change nothing, which a cookie may carry from anywhere.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="staffToken",
    description="A staff member's OIDC/JWT access token (`gridline staff token` in a local run).",
    bearerFormat="JWT",
)


def same_origin(request: Request) -> bool:
    """Whether the request's `Origin` header names the host it was sent to (a browser sends
    it with every POST; a missing one is not the same origin)."""
    origin = urlsplit(request.headers.get("origin", ""))
    host = request.headers.get("host", "")
    return bool(origin.scheme in ("http", "https") and host and origin.netloc == host)


def _not_signed_in(reason: str, error: str) -> ProblemError:
    return ProblemError(
        status.HTTP_401_UNAUTHORIZED,
        "staff.token_invalid",
        reason,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


async def signed_in(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Staff:
    """The staff member of the request's bearer token: 401 without one or for one that does
    not hold, 503 while the issuer's keys cannot be had."""
    token = credentials.credentials if credentials else request.cookies.get(STAFF_COOKIE, "")
    if not token:
        raise ProblemError(
            status.HTTP_401_UNAUTHORIZED,
            "staff.unauthenticated",
            "未登录：请以工作人员身份登录后再操作（请求须带 Authorization: Bearer 登录凭证）",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if credentials is None and request.method not in SAFE_METHODS and not same_origin(request):
        raise ProblemError(
            status.HTTP_403_FORBIDDEN,
            "staff.cross_origin",
            "请求并非来自本系统的页面，未予受理；请在工作台页面上操作",
        )
    verifier: TokenVerifier = request.app.state.staff_tokens
    try:
        return await verifier.staff(token)
    except NotSignedIn as refused:
        raise _not_signed_in(str(refused), "invalid_token") from None
    except KeysUnavailable as unavailable:
        raise ProblemError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "staff.keys_unavailable",
            str(unavailable),
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None


def requires(*permissions: Permission) -> Callable[[Staff], Awaitable[Staff]]:
    """A dependency: the signed-in staff member, 403 unless the role has one of `permissions`
    (alternatives, e.g. all tasks or only those under a measure)."""

    async def allowed(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
        try:
            staff.require(*permissions)
        except Forbidden as refused:
            raise forbidden(refused, "staff.forbidden") from None
        return staff

    return allowed


def forbidden(refused: Forbidden, rule: str = "staff.out_of_scope") -> ProblemError:
    """The 403 of a refusal: by default of a scope check (the role was checked before)."""
    return ProblemError(status.HTTP_403_FORBIDDEN, rule, str(refused))


@contextmanager
def refusing() -> Iterator[None]:
    """Answer a `Forbidden` raised inside (a scope check) with its 403."""
    try:
        yield
    except Forbidden as refused:
        raise forbidden(refused) from None
