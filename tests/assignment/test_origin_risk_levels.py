"""The risk lookup at whatever level the origin was given: province, prefecture or county.

Intake resolves a written origin to the most specific GB/T 2260 division it names (苏州 is the
prefecture 320500, 江苏省苏州市吴中区 the county 320506) and the report carries that code; a risk
area covers its own code and every division inside it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridline.divisions import division_table
from services.assignment.risk import RiskArea, RiskAreas

T0 = datetime(2022, 1, 10, 8, 0, tzinfo=UTC)


def _areas(*entries: tuple[str, str]) -> RiskAreas:
    return RiskAreas(
        [RiskArea(code, level, T0, None, changed_at=T0) for code, level in entries]  # type: ignore[arg-type]
    )


def _origin(written: str) -> str:
    [division] = division_table().by_name(written)
    return division.code


@pytest.mark.parametrize(
    ("written", "areas", "level"),
    [
        # A prefecture-level origin matches a prefecture-level area and its province's.
        ("苏州", [("320500", "high")], "high"),
        ("苏州市", [("320000", "medium")], "medium"),
        ("江苏省苏州市工业园区", [("320500", "high")], "high"),
        # A county-level origin matches its own, its prefecture's or its province's entry.
        ("吴中区", [("320506", "high")], "high"),
        ("江苏苏州吴中", [("320500", "medium")], "medium"),
        ("新疆乌鲁木齐市天山区", [("650000", "low")], "low"),
        ("天山区", [("650100", "high")], "high"),
        # Counties directly under their province (municipalities, 省直辖县级市).
        ("上海浦东", [("310000", "medium")], "medium"),
        ("仙桃", [("420000", "medium")], "medium"),
        ("仙桃", [("429004", "high")], "high"),
        # A province-level origin matches its province's entry.
        ("沪", [("310000", "high")], "high"),
        ("內蒙古", [("150000", "medium")], "medium"),
    ],
)
def test_an_origin_matches_the_areas_it_lies_in(
    written: str, areas: list[tuple[str, str]], level: str
) -> None:
    assert _areas(*areas).level_of(_origin(written), T0) == level


@pytest.mark.parametrize(
    ("written", "areas"),
    [
        # A county's entry says nothing of its whole prefecture or province: the report's own
        # risk stands for 苏州 when only 吴中区 is listed.
        ("苏州", [("320506", "high")]),
        ("江苏", [("320500", "high")]),
        # Neighbours and namesakes elsewhere do not match.
        ("杭州", [("320500", "high")]),
        ("北京朝阳", [("220104", "high"), ("211300", "high")]),
    ],
)
def test_an_origin_does_not_match_areas_elsewhere_or_inside_it(
    written: str, areas: list[tuple[str, str]]
) -> None:
    assert _areas(*areas).level_of(_origin(written), T0) is None
