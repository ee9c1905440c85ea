"""A small GB/T 2260 region table (data/regions.csv) and place-name lookup.

The table holds every province and the prefectures and counties arrivals come from in practice;
a code outside it is still accepted when its province is known (see `domain.resolve_origin`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_TABLE = Path(__file__).parent / "data" / "regions.csv"

# Prefecture rows that are placeholders under a municipality and never part of a written name.
_PLACEHOLDERS = {"市辖区", "县"}

# Traditional characters met in the table's names, to their simplified forms. Names are matched
# after mapping, so 上海市浦東新區 finds 上海市浦东新区.
_TRADITIONAL = str.maketrans(
    dict(
        zip(
            "東區陽長門關蘭廣漢華灣鄉縣鎮遼寧龍蘇雲貴陝肅內臺錦維爾黃慶嶺壯豐園興義鳥",
            "东区阳长门关兰广汉华湾乡县镇辽宁龙苏云贵陕肃内台锦维尔黄庆岭壮丰园兴义鸟",
            strict=True,
        )
    )
)


@dataclass(frozen=True)
class Region:
    """One row of the table, with the full name people write (`上海市浦东新区`)."""

    code: str
    name: str
    full_name: str


def to_simplified(text: str) -> str:
    """Map the traditional characters the table knows to their simplified forms."""
    return text.translate(_TRADITIONAL)


class RegionTable:
    """Lookup by code and by place name (full, without the province, or the own name)."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        names = dict(rows)
        self._by_code: dict[str, Region] = {}
        self._by_name: dict[str, set[str]] = {}
        for code, name in rows:
            parts = [names.get(code[:2] + "0000", "")]
            if code[2:] != "0000":
                prefecture = names.get(code[:4] + "00", "")
                if code[4:] != "00" and prefecture not in _PLACEHOLDERS:
                    parts.append(prefecture)
                parts.append(name)
            full = "".join(dict.fromkeys(p for p in parts if p))
            self._by_code[code] = Region(code, name, full)
            if name in _PLACEHOLDERS:
                continue
            for alias in {full, "".join(parts[1:]), name}:
                if alias:
                    self._by_name.setdefault(alias, set()).add(code)

    def by_code(self, code: str) -> Region | None:
        """The region of exactly this code."""
        return self._by_code.get(code)

    def province(self, code: str) -> Region | None:
        """The province a code belongs to (its first two digits)."""
        return self._by_code.get(code[:2] + "0000")

    def nearest(self, code: str) -> Region | None:
        """The region itself, else its prefecture, else its province."""
        for candidate in (code, code[:4] + "00", code[:2] + "0000"):
            region = self._by_code.get(candidate)
            if region is not None and region.name not in _PLACEHOLDERS:
                return region
        return None

    def by_name(self, name: str) -> list[Region]:
        """Regions a written place name may mean (simplified or traditional), best first."""
        key = to_simplified("".join(name.split()))
        codes = self._by_name.get(key, set())
        return [self._by_code[c] for c in sorted(codes)]


@cache
def region_table() -> RegionTable:
    """The table shipped in data/regions.csv."""
    with _TABLE.open(encoding="utf-8", newline="") as handle:
        rows = [(row["code"], row["name"]) for row in csv.DictReader(handle)]
    return RegionTable(rows)
