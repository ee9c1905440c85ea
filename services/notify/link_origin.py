"""Notify sends only links to escalation's task pages (GRIDLINE_PUBLIC_BASE_URL).

A notice carrying any other link (another host, the staff API, a path that climbs out of
`/t/`) was not made by the platform as configured: whoever could write to the notifications
topic would otherwise put their link in front of cadres and offices under the platform's name.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


class TaskPageOrigin:
    """Where a notice's link may point: under `<public base URL>/t/`."""

    def __init__(self, public_base_url: str) -> None:
        base = urlsplit(public_base_url)
        self.origin = _origin(base)
        self.prefix = base.path.rstrip("/") + "/t/"
        self.allowed = f"{public_base_url.rstrip('/')}/t/"
        # The links the platform makes, told by one match: the base as configured, a task id,
        # a query of plain characters. Only when the base itself passes the whole check.
        self._ours = (
            re.compile(re.escape(self.allowed) + r"[0-9A-Za-z_\-]+(?:\?[0-9A-Za-z_.~=&%+\-]*)?")
            if self._checked(f"{self.allowed}x") is None
            else None
        )

    def refusal(self, link: str) -> str | None:
        """Why `link` may not be sent; None when it is a task page of the origin (or empty)."""
        if not link or (self._ours is not None and self._ours.fullmatch(link)):
            return None
        return self._checked(link)

    def _checked(self, link: str) -> str | None:
        """`refusal` of a link, the whole check: parsed, its origin and path compared."""
        if any(character <= " " or character == "\x7f" for character in link):
            return "the link holds spaces or control characters"
        try:
            parts = urlsplit(link)
            origin = _origin(parts)
        except ValueError:
            return "the link is no URL"
        if parts.username is not None or parts.password is not None:
            return "the link carries a user name"
        shown = f"{origin}{parts.path}"
        if origin != self.origin or not parts.path.startswith(self.prefix):
            return f"{shown} is not under the task pages {self.allowed}"
        # `..` (or its escaped form, which browsers read the same) would climb out of /t/.
        if {".", ".."} & {unquote(segment) for segment in parts.path.split("/")}:
            return f"{shown} climbs out of the task pages {self.allowed}"
        return None


def _origin(parts: SplitResult) -> str:
    """`scheme://host:port` with the scheme's default port spelled out (raises ValueError on
    a port that is no number)."""
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"
