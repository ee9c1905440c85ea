"""Signed, expiring links: the holder of a link may act on one task until it expires, no password.

The signature is an HMAC-SHA256 over the task id and the expiry, so neither can be changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlencode


class LinkRefused(Exception):
    """A link that is expired or was tampered with; `reason` is `expired` or `invalid`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the link is {reason}")
        self.reason = reason


def signature(key: bytes, task_id: str, expires: int) -> str:
    """The signature of a task id and its expiry (unix seconds), urlsafe base64."""
    digest = hmac.new(key, f"{task_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_query(key: bytes, task_id: str, expires_at: datetime) -> str:
    """The query string `e=<expiry>&s=<signature>` of a link to one task."""
    expires = int(expires_at.timestamp())
    return urlencode({"e": expires, "s": signature(key, task_id, expires)})


def verify(key: bytes, task_id: str, expires: str, given: str, now: datetime) -> datetime:
    """The link's expiry if it is genuine and not expired; LinkRefused otherwise."""
    # isascii: `²` is a digit to isdigit, not to int; compare_digest takes bytes of any text.
    if not (expires.isascii() and expires.isdigit()) or not hmac.compare_digest(
        signature(key, task_id, int(expires)).encode(), given.encode()
    ):
        raise LinkRefused("invalid")
    expires_at = datetime.fromtimestamp(int(expires), UTC)
    if now >= expires_at:
        raise LinkRefused("expired")
    return expires_at
