"""Signed links: an HMAC-SHA256 over every field a link claims, so that none can be changed.

What the fields mean (a task, its recipient, the holder, the times) is `gridline.links`' business;
here they are only text, signed and checked in a constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence

# 128 bits of the HMAC: out of reach of guessing, and short enough for a link read in an SMS.
_SIGNATURE_BYTES = 16


class LinkRefused(Exception):
    """A link that does not let its bearer in.

    `reason` is `invalid` (tampered, or not ours), `expired`, `handed_over` (the task has gone
    to another holder since the link was issued) or `view_only` (an action through a link that
    only shows the task).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the link is refused: {reason}")
        self.reason = reason


def signature(key: bytes, fields: Sequence[str]) -> str:
    """The signature of the fields, in their order, as urlsafe base64 without padding."""
    # A JSON array keeps the fields apart whatever they hold: no two lists sign the same text.
    message = json.dumps(list(fields), ensure_ascii=False, separators=(",", ":")).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(key: bytes, fields: Sequence[str], given: str) -> None:
    """Nothing if `given` is the fields' signature; LinkRefused("invalid") otherwise."""
    # compare_digest takes bytes of any text; a str argument must be ASCII.
    if not hmac.compare_digest(signature(key, fields).encode(), given.encode()):
        raise LinkRefused("invalid")
