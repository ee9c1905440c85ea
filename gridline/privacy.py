"""Scrubbing personal numbers out of free text, and redacting secrets from URLs, logs and errors.

`scrub_text` is the one function every service applies to text people write (an address, a name,
a note): intake before a report reaches the bus, notify again before anything is sent. It masks
mainland ID numbers, passports and permits, and mobiles in the ways people write them, and removes
the invisible characters that could make one address look like another. `redact_url` and
`redact_error` keep link signatures, robot keys and SQL parameters out of traces, logs and
dead-letter headers.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from gridline.personal import mask_id_number, mask_phone

REDACTED = "REDACTED"

# Hangul fillers render as blank space but are letters (Lo), so the category test misses them.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# Kept: layout people mean.
_KEPT_CONTROLS = frozenset("\t\n\r")

# Between two digits of one number people put spaces (any kind), dashes, dots or underscores,
# a few at most ("138 - 1234 - 5678").
_SEP = r"[\s\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d.\uff0e\u00b7\u30fb_]{0,3}"
# 17 digits and a digit or X; no digit may touch it, but letters do not protect it (`ID:…x`).
_ID_NUMBER = re.compile(rf"(?<![0-9])[0-9](?:{_SEP}[0-9]){{16}}{_SEP}[0-9Xx](?![0-9])")
# Passports (E, G and the D/S/P official ones; E + letter + 7 for the newest), mainland permits
# to Hong Kong and Macau (C), and Hong Kong and Macau residents' permits (H/M + 8 or 10 digits).
# Taiwan permits are 8 bare digits, too common a shape in addresses to mask.
_PASSPORT = re.compile(
    r"(?<![A-Za-z0-9])(?:[EGDSPC][0-9]{8}|[EC][A-HJ-NP-Z][0-9]{7}|[HM](?:[0-9]{10}|[0-9]{8}))"
    r"(?![0-9])",
    re.IGNORECASE,
)
# A mainland mobile, with an optional +86 / 0086 / 86 / (86) prefix kept as written.
_MOBILE = re.compile(
    rf"(?<![0-9])(?P<prefix>(?:(?:[+\uff0b]|00)?86|[(\uff08][+\uff0b]?86[)\uff09]){_SEP})?"
    rf"(?P<number>1{_SEP}[3-9](?:{_SEP}[0-9]){{9}})(?![0-9])"
)
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")
# Every pattern above needs seven digits at least, a few separators apart: text without such a
# run (most notices: their numbers are masked already, their dates short) has nothing to mask.
_NUMBER_RUN = re.compile(rf"[0-9](?:{_SEP}[0-9]){{6}}")

# A path segment that is a secret by its place: Feishu's /bot/v2/hook/TOKEN, a task page /t/ID.
_TOKEN_AFTER = frozenset({"hook", "hooks", "t"})
# Or by its look: long, of a token's alphabet, with digits or mixed case (not a word).
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_\-.~=+%]{16,}")
# Any scheme: database and cache URLs carry a password.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# `key=…` and the like outside a URL, as in a message quoting only the query.
_SECRET_PARAM = re.compile(
    r"(?i)\b(key|access_token|token|sign|sig|signature|secret|password|s)=[^&\s'\"]+"
)
# SQLAlchemy puts the bound values of a failed statement in its message; PostgreSQL quotes the
# values of a violated key and the whole failing row.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_PG_KEY = re.compile(
    r"(Key \([^)\n]*\)=)\([^\n]*?\)(?= already exists| is not present| conflicts with|\.?$)",
    re.MULTILINE,
)
_PG_ROW = re.compile(r"(Failing row contains )\([^\n]*\)")


def _fold_char(char: str) -> str:
    """One character as the scrubber reads it: any script's digit as an ASCII digit, full-width
    and other compatibility forms of a letter or digit as ASCII, invisible characters as nothing;
    anything else (Chinese, punctuation) unchanged."""
    if char.isdecimal():
        return str(unicodedata.decimal(char))
    category = unicodedata.category(char)
    if category == "Cf" or (category == "Cc" and char not in _KEPT_CONTROLS):
        return ""  # zero-width, bidi controls, BOM, word joiner, tags, C0/C1 controls
    if char in _INVISIBLE_LETTERS:
        return ""
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and folded.isascii() and folded.isalnum():
        return folded  # １ ① ² Ｅ: a digit or letter in disguise
    return char


class _Folding(dict[int, str]):
    """`_fold_char` by code point for `str.translate`, each character worked out once."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_char(chr(code))
        return folded


_FOLDING = _Folding()

# Characters `_fold_char` leaves as they are (checked for each in the tests): ASCII, Chinese,
# its punctuation and the full-width forms that are no letter or digit. Text made of these only
# needs no folding, told by one scan in C instead of a table lookup for each character.
_PLAIN = re.compile(
    "[\t\n\r\x20-\x7e\u00b7\u2010-\u2027\u3000-\u303f\u4e00-\u9fff"
    "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]*"
)


def _fold_text(text: str) -> str:
    """`text` with digits and letters in ASCII and invisible characters removed.

    Only digits and Latin letters are NFKC-normalised, character by character: normalising the
    whole text would also turn Chinese full-width punctuation (，：（）) into ASCII. Text of
    plain characters only (most) is returned after one scan; other text costs a table lookup
    in C for each character.
    """
    if _PLAIN.fullmatch(text):
        return text
    return text.translate(_FOLDING)


def _id_mask(match: re.Match[str]) -> str:
    return mask_id_number(_NOT_ALNUM.sub("", match[0]).upper())


def _dated_id_mask(match: re.Match[str]) -> str:
    """The mask of an ID number whose birth date could be one; other 18-digit runs are left for
    the mobiles first, so that two mobiles written in groups are masked as two mobiles."""
    digits = _NOT_ALNUM.sub("", match[0])
    year, month, day = digits[6:8], int(digits[10:12]), int(digits[12:14])
    if year in ("18", "19", "20") and 1 <= month <= 12 and 1 <= day <= 31:
        return _id_mask(match)
    return match[0]


def _passport_mask(match: re.Match[str]) -> str:
    return mask_id_number(match[0].upper())


def _mobile_mask(match: re.Match[str]) -> str:
    return (match["prefix"] or "") + mask_phone(_NOT_ALNUM.sub("", match["number"]))


# A notice's title and text are scrubbed at several steps of one delivery (render, the inbox's
# JSON, the SMS text): the same strings, answered once.
@lru_cache(maxsize=4096)
def scrub_text(text: str) -> str:
    """Free text with every ID number, passport, permit and mobile in it masked.

    Digits in any form (full-width, other scripts, circled) count as digits, numbers may be
    written in groups with spaces, dashes or dots, mobiles with a +86, 0086 or (86) prefix.
    Masks: `**************1234` for an ID number, `*******78` for a passport or permit,
    `138****5678` for a mobile. Zero-width and bidi control characters are removed.
    """
    text = _fold_text(text)
    if not _NUMBER_RUN.search(text):
        return text
    text = _ID_NUMBER.sub(_dated_id_mask, text)
    text = _PASSPORT.sub(_passport_mask, text)
    text = _MOBILE.sub(_mobile_mask, text)
    # What is still shaped like an ID number (a mistyped birth date) is masked all the same.
    return _ID_NUMBER.sub(_id_mask, text)


def _redact_segment(segment: str, after: str) -> str:
    if segment and after in _TOKEN_AFTER:
        return REDACTED
    decoded = unquote(segment)
    mixed_case = decoded.lower() != decoded != decoded.upper()
    if _TOKEN_SEGMENT.fullmatch(segment) and (mixed_case or any(c.isdigit() for c in decoded)):
        return REDACTED
    scrubbed = scrub_text(decoded)
    return segment if scrubbed == decoded else quote(scrubbed, safe="*")


def redact_query(query: str) -> str:
    """A query string with every value replaced by `REDACTED` (the names stay, scrubbed)."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(scrub_text(name), REDACTED) for name, _ in pairs], safe="")


def redact_url(url: str) -> str:
    """A URL (full, or a path with its query) safe to record.

    User and password are dropped, every query value becomes `REDACTED`, so do path segments
    that hold a token (after `/hook/` or `/t/`, or long and random-looking), numbers of people
    in the path are masked, and the fragment is dropped.
    """
    parts = urlsplit(url)
    segments = parts.path.split("/")
    path = "/".join(
        _redact_segment(segment, segments[i - 1] if i else "") for i, segment in enumerate(segments)
    )
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, path, redact_query(parts.query), ""))


def redact_error(text: str) -> str:
    """An error message or traceback safe to log or to put in a header.

    SQL parameters and the values PostgreSQL quotes from a violated key or failing row are
    replaced, URLs are redacted as by `redact_url`, `key=…`-like pairs lose their value, and
    personal numbers are masked as by `scrub_text`.
    """
    text = _SQL_PARAMETERS.sub(f"[parameters: {REDACTED}]", text)
    text = _PG_KEY.sub(rf"\1({REDACTED})", text)
    text = _PG_ROW.sub(rf"\1({REDACTED})", text)
    text = _URL.sub(lambda m: redact_url(m[0]), text)
    text = _SECRET_PARAM.sub(rf"\1={REDACTED}", text)
    return scrub_text(text)
