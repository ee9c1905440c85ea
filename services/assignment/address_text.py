"""Written Chinese addresses made comparable: width, script, numerals and the parts people write."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gridline.divisions import to_simplified

_SPACES = re.compile(r"[\s\u3000·•,，、。.()（）]+")
_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGITS |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMERAL = re.compile(r"[零〇○一二两三四五六七八九十百]+")
_DASHES = re.compile(r"[-－—–~～_/\\]+")


def chinese_number(text: str) -> int:
    """A Chinese numeral's value: 二十三 → 23, 一百零二 → 102, 五零二 → 502 (digit by digit)."""
    if "十" not in text and "百" not in text:
        return int("".join(str(_DIGITS[c]) for c in text))
    total = 0
    current = 0
    for char in text:
        if char == "百":
            total += (current or 1) * 100
            current = 0
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = _DIGITS[char]
    return total + current


def arabic_numerals(text: str) -> str:
    """Every Chinese numeral in `text` written in Arabic digits."""
    return _NUMERAL.sub(lambda m: str(chinese_number(m.group())), text)


def clean(address: str) -> str:
    """NFKC (full-width digits and letters), simplified script, no spaces or punctuation."""
    # OpenCC converts whole words first, so a place name keeps the characters it is written
    # with in simplified script (乾县 stays 乾县), which a character table cannot do.
    text = to_simplified(unicodedata.normalize("NFKC", address))
    return _DASHES.sub("-", _SPACES.sub("", text))


@dataclass(frozen=True, slots=True)
class Parts:
    """The numbered parts after the compound: building, unit and room, each possibly missing."""

    building: int | None
    unit: int | None
    room: int | None


_BUILDING = r"(?P<building>\d+)(?:号楼|号院楼|栋楼|#楼|#栋|#幢|#座|栋|幢|座|号|#|楼)"
_UNIT = r"(?P<unit>\d+)(?:单元|门洞|门|单)"
_ROOM = r"(?P<room>\d+)(?:室|号|户|房)?"
_FORMS = (
    # 23号楼2-502, 23#2-502
    re.compile(rf"^{_BUILDING}-?(?P<unit>\d+)-(?P<room>\d+)"),
    # 23号楼2单元502室, 23栋2单元502, 23幢二单元五零二
    re.compile(rf"^{_BUILDING}-?(?:{_UNIT})?-?(?:{_ROOM})?"),
    # 23-2-502
    re.compile(r"^(?P<building>\d+)-(?P<unit>\d+)-(?P<room>\d+)"),
    # 2单元502 with the building left out
    re.compile(rf"^{_UNIT}-?(?:{_ROOM})?"),
)
_FILLER = re.compile(r"^(?:小区|院内|院|内)+")
# "2单元3楼302": the floor is already in the room number.
_FLOOR = re.compile(r"(?<=单元)\d+[楼层](?=\d)")


def parse_parts(tail: str) -> Parts:
    """The building, unit and room numbers written after the compound name."""
    text = _FLOOR.sub("", _FILLER.sub("", arabic_numerals(tail).replace("第", "")))
    for form in _FORMS:
        match = form.match(text)
        if match:
            found = match.groupdict()
            return Parts(
                building=_number(found.get("building")),
                unit=_number(found.get("unit")),
                room=_number(found.get("room")),
            )
    return Parts(None, None, None)


def _number(value: str | None) -> int | None:
    return int(value) if value else None
