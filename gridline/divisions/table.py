"""China's administrative divisions (GB/T 2260: province, prefecture, county) and their names as
people write them.

The table (gbt2260.csv, provenance in source.json, both written by `refresh.py`) is read once;
every written form of every division goes into one dictionary, so a lookup costs a handful of
dictionary probes whatever the table's size.

A name is matched after NFKC, without spaces or punctuation, and in simplified script (OpenCC's
t2s). It may be a division's own name (江苏省, 苏州市, 天山区), the name without its generic
suffix (江苏, 苏州, 天山, 广西, 延边, 延边州), a province's one-character abbreviation on its own
(沪, 苏), or a chain of these from the top (江苏省苏州市, 新疆乌鲁木齐天山区). A chain ends at the
first part that is no division inside the previous one, so 江苏省苏州市工业园区 is 苏州市.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import opencc

TABLE_FILE = Path(__file__).with_name("gbt2260.csv")
SOURCE_FILE = Path(__file__).with_name("source.json")

PROVINCE, PREFECTURE, COUNTY = 1, 2, 3
# A row of the table: code, name, parent code ("" for a province), level. The level is kept
# apart from the parent because a county may sit directly under its province (北京市朝阳区,
# 湖北省仙桃市).
Row = tuple[str, str, str, int]

# A division's official name outranks a shortened form of another's: 朝阳县 is the county alone,
# while 朝阳 may be the city, the county or a district.
_OFFICIAL, _SHORTENED = 0, 1

# The 56 nationalities (and 各族, "all nationalities") as they appear in the names of autonomous
# regions, prefectures, counties and banners, which people leave out: 延边朝鲜族自治州 → 延边.
_NATIONALITIES = (
    *(
        "蒙古",
        "回",
        "藏",
        "维吾尔",
        "苗",
        "彝",
        "壮",
        "布依",
        "朝鲜",
        "满",
        "侗",
        "瑶",
        "白",
        "土家",
    ),
    *(
        "哈尼",
        "哈萨克",
        "傣",
        "黎",
        "傈僳",
        "佤",
        "畲",
        "高山",
        "拉祜",
        "水",
        "东乡",
        "纳西",
        "景颇",
    ),
    *("柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南", "仡佬", "锡伯", "阿昌"),
    *("普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安", "裕固", "京"),
    *("塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺", "各"),
)
_NATIONALITY = "|".join(sorted(_NATIONALITIES, key=len, reverse=True))
_AUTONOMOUS = re.compile(
    rf"^(?P<core>.{{2,}}?)(?:(?:{_NATIONALITY})族?)+(?P<kind>自治区|自治州|自治县|自治旗)$"
)
_AUTONOMOUS_KIND = re.compile(r"(自治区|自治州|自治县|自治旗)$")
# What a shortened autonomous name may be written with: 延边州, 广西自治区, 长阳县, 莫力达瓦旗.
_AUTONOMOUS_SHORT = {
    "自治区": ("自治区",),
    "自治州": ("州", "自治州"),
    "自治县": ("县",),
    "自治旗": ("旗",),
}
# Generic endings by level, longest first: 浦东新区 → 浦东, not 浦东新.
_SUFFIXES = {
    PROVINCE: ("特别行政区", "省", "市"),
    PREFECTURE: ("地区", "市", "盟"),
    COUNTY: ("新区", "林区", "特区", "矿区", "区", "县", "市", "旗"),
}
# The provinces' one-character abbreviations (简称), matched only as the whole name: inside a
# longer name 苏 would eat the start of 苏州.
_ABBREVIATIONS = {
    "11": "京",
    "12": "津",
    "13": "冀",
    "14": "晋",
    "15": "蒙",
    "21": "辽",
    "22": "吉",
    "23": "黑",
    "31": "沪",
    "32": "苏",
    "33": "浙",
    "34": "皖",
    "35": "闽",
    "36": "赣",
    "37": "鲁",
    "41": "豫",
    "42": "鄂",
    "43": "湘",
    "44": "粤",
    "45": "桂",
    "46": "琼",
    "50": "渝",
    "51": "川蜀",
    "52": "黔贵",
    "53": "滇云",
    "54": "藏",
    "61": "陕秦",
    "62": "甘陇",
    "63": "青",
    "64": "宁",
    "65": "新",
    "71": "台",
    "81": "港",
    "82": "澳",
}
# Short forms in common use that no rule derives.
_EXTRA_FORMS = {"150000": ("内蒙",)}
_NOISE = re.compile(r"[\s\u3000·•,，、。.;；:：()（）\[\]【】<>《》\"'“”‘’\-—–_/\\|]+")
_COUNTRY = ("中华人民共和国", "中国")


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


# OpenCC's traditional-to-simplified conversion (phrases first, then characters), so 乾安縣
# becomes 乾安县 and not 干安县, as a character table would make it.
_T2S: _Converter = opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Text in simplified script (OpenCC t2s); simplified text is left as it is."""
    return text if text.isascii() else _T2S.convert(text)


@dataclass(frozen=True, slots=True)
class Division:
    """One division: its code, own name, the full name people write (`江苏省苏州市吴中区`),
    its level (1 province, 2 prefecture, 3 county) and its parent's code ("" for a province)."""

    code: str
    name: str
    full_name: str
    level: int
    parent_code: str


def shortened_forms(name: str, level: int) -> list[str]:
    """The forms of a division's name without its generic ending, at least two characters."""
    forms: list[str] = []
    autonomous = _AUTONOMOUS.match(name)
    kind = _AUTONOMOUS_KIND.search(name)
    if kind is not None:
        if autonomous is not None:
            core = autonomous.group("core")
        else:
            # No nationality before the ending (西藏自治区), or the name is the nationality
            # itself (东乡族自治县, 鄂伦春自治旗).
            core = name[: kind.start()]
            core = core[:-1] if core.endswith("族") and len(core) > 2 else core
        if len(core) >= 2:
            forms.append(core)
            forms += [core + ending for ending in _AUTONOMOUS_SHORT[kind.group()]]
    else:
        for suffix in _SUFFIXES[level]:
            if name.endswith(suffix):
                if len(name) - len(suffix) >= 2:
                    forms.append(name[: -len(suffix)])
                if suffix == "特别行政区":
                    forms.append(name[: -len(suffix)] + "特区")
                break
    return [f for f in dict.fromkeys(forms) if f != name]


class DivisionTable:
    """Lookups by code and by written name; built once from (code, name, parent code) rows."""

    def __init__(self, rows: Iterable[Row]) -> None:
        parents: dict[str, str] = {}
        names: dict[str, str] = {}
        levels: dict[str, int] = {}
        for code, name, parent, level in rows:
            names[code] = name
            parents[code] = parent
            levels[code] = level
        self._ancestors: dict[str, tuple[str, ...]] = {}
        self._by_code: dict[str, Division] = {}
        for code, name in names.items():
            chain: list[str] = []
            parent = parents[code]
            while parent:
                chain.insert(0, parent)
                parent = parents.get(parent, "")
            self._ancestors[code] = tuple(chain)
            self._by_code[code] = Division(
                code=code,
                name=name,
                full_name="".join(names[c] for c in (*chain, code)),
                level=levels[code],
                parent_code=parents[code],
            )
        forms: dict[str, dict[str, int]] = {}
        self._written: dict[str, tuple[str, ...]] = {}
        for division in self._by_code.values():
            written = {division.name: _OFFICIAL}
            for form in shortened_forms(division.name, division.level):
                written.setdefault(form, _SHORTENED)
            for form in _EXTRA_FORMS.get(division.code, ()):
                written.setdefault(form, _SHORTENED)
            self._written[division.code] = tuple(written)
            for form, rank in written.items():
                # A form in traditional script converts to the same key a reader's input does.
                for key in {form, to_simplified(form)}:
                    codes = forms.setdefault(key, {})
                    codes[division.code] = min(rank, codes.get(division.code, rank))
        self._forms: dict[str, tuple[tuple[str, int], ...]] = {
            form: tuple(sorted(codes.items())) for form, codes in forms.items()
        }
        # The longest form starting with each character bounds the probes at a position.
        self._longest: dict[str, int] = {}
        for form in self._forms:
            self._longest[form[0]] = max(len(form), self._longest.get(form[0], 0))
        self._abbreviations = {
            letter: prefix + "0000"
            for prefix, letters in _ABBREVIATIONS.items()
            if prefix + "0000" in self._by_code
            for letter in letters
        }

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Division]:
        return iter(self._by_code.values())

    def by_code(self, code: str) -> Division | None:
        """The division of exactly this code."""
        return self._by_code.get(code)

    def province(self, code: str) -> Division | None:
        """The province a code belongs to (its first two digits)."""
        return self._by_code.get(code[:2] + "0000")

    def nearest(self, code: str) -> Division | None:
        """The division itself, else the one its code prefix names (prefecture, province)."""
        for candidate in (code, code[:4] + "00", code[:2] + "0000"):
            division = self._by_code.get(candidate)
            if division is not None:
                return division
        return None

    def ancestors(self, code: str) -> tuple[Division, ...]:
        """The divisions above this one, province first."""
        return tuple(self._by_code[c] for c in self._ancestors.get(code, ()))

    def within(self, code: str, area: str) -> bool:
        """Whether the division `code` is `area` or lies inside it."""
        return code == area or area in self._ancestors.get(code, ())

    def written_forms(self, code: str) -> tuple[str, ...]:
        """The ways a division's name is written: its own name first, then shortened forms."""
        return self._written.get(code, ())

    def by_name(self, name: str) -> list[Division]:
        """The divisions a written name may mean, by code: none when unknown, one when the name
        names one division, several when it is ambiguous (the candidates to offer)."""
        text = normalize(name)
        if not text:
            return []
        entries = self._forms.get(text)
        if entries is None:
            # Most names are written in simplified script: convert only those that miss.
            text = to_simplified(text)
            entries = self._forms.get(text)
        if entries is None:
            abbreviated = self._abbreviations.get(text)
            if abbreviated is not None:
                return [self._by_code[abbreviated]]
            entries = self._chain(text)
        return [self._by_code[code] for code in self._choose(entries)]

    def _chain(self, text: str) -> tuple[tuple[str, int], ...]:
        """The divisions of the last part of a chain of names, each inside the one before."""
        found: tuple[tuple[str, int], ...] = ()
        above: set[str] = set()
        start = 0
        while start < len(text):
            # Longest form first, so 吉林市 is not read as 吉林 and then 市.
            longest = min(self._longest.get(text[start], 0), len(text) - start)
            for length in range(longest, 1, -1):
                entries = self._forms.get(text[start : start + length], ())
                if above:
                    entries = tuple(
                        e for e in entries if not above.isdisjoint(self._ancestors[e[0]])
                    )
                if entries:
                    found = entries
                    above = {code for code, _ in found}
                    start += length
                    break
            else:
                # Below the county (工业园区, a town, a street): the last division found stands.
                break
        return found

    def _choose(self, entries: tuple[tuple[str, int], ...]) -> list[str]:
        """The codes a name means among the divisions it matched."""
        if not entries:
            return []
        best = min(rank for _, rank in entries)
        codes = [code for code, rank in entries if rank == best]
        # A name shared across levels means the larger division: 海南 and 河北 are provinces,
        # not 海南藏族自治州 or 天津市河北区; 西安 is the city, not 辽源市西安区. A district is
        # then written in full (西安区) or with its city, and is offered when that is ambiguous.
        outermost = min(self._by_code[c].level for c in codes)
        outer = [c for c in codes if self._by_code[c].level == outermost]
        if len(outer) == 1:
            return outer
        # Otherwise every candidate that is not inside another one (黄山区 lies in 黄山市).
        chosen = set(codes)
        return [c for c in codes if chosen.isdisjoint(self._ancestors[c])]


def normalize(name: str) -> str:
    """A written name as it is matched: NFKC, no spaces or punctuation, without a leading 中国
    (the script is converted only when the name is not found as written)."""
    text = _NOISE.sub("", unicodedata.normalize("NFKC", name))
    for country in _COUNTRY:
        if text.startswith(country) and len(text) > len(country):
            return text[len(country) :]
    return text


def read_rows(path: Path = TABLE_FILE) -> list[Row]:
    """(code, name, parent code, level) rows of a table file."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            (r["code"], r["name"], r["parent_code"], int(r["level"]))
            for r in csv.DictReader(handle)
        ]


@cache
def division_table() -> DivisionTable:
    """The shipped table (gbt2260.csv), built once per process."""
    return DivisionTable(read_rows())


@cache
def table_source() -> Mapping[str, Any]:
    """Where the shipped table comes from: authority, source, snapshot date, row count."""
    source: dict[str, Any] = json.loads(SOURCE_FILE.read_text(encoding="utf-8"))
    return source
