"""Masking of personal data that slipped into free text, applied to everything notify sends."""

from __future__ import annotations

import re

# A mainland ID number (17 digits and a digit or X) and a mainland mobile, not inside a longer
# run of digits; letters around them do not protect them.
_ID_NUMBER = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_personal(text: str) -> str:
    """Mask any ID number or mobile in free text: `620102********1234`, `138****5678`."""
    text = _ID_NUMBER.sub(lambda m: f"{m[1]}********{m[2]}", text)
    return _MOBILE.sub(lambda m: f"{m[1]}****{m[2]}", text)
