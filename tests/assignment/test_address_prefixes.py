"""The province and prefecture people write before a county come from GB/T 2260 by the
directory's county, not from constants: any county's addresses lose them before matching."""

from __future__ import annotations

import pytest

from services.assignment.address_index import AddressIndex, outer_prefixes
from services.assignment.grid import Node, NodeKind

ADDRESS = "天山区燕儿窝街道和平社区幸福小区3号楼2单元501室"


def _county(name: str, *aliases: str) -> Node:
    return Node("county", NodeKind.COUNTY, name, None, aliases=aliases)


def _index(county: Node) -> AddressIndex:
    chain = [
        county,
        Node("town", NodeKind.TOWNSHIP, "燕儿窝街道", "county"),
        Node("community", NodeKind.COMMUNITY, "和平社区", "town"),
        Node("grid", NodeKind.GRID, "幸福小区", "community"),
        Node("building", NodeKind.BUILDING, "3号楼", "grid"),
        Node("unit", NodeKind.UNIT, "2单元", "building"),
        Node("home", NodeKind.HOUSEHOLD, "501室", "unit", address=ADDRESS),
    ]
    return AddressIndex({n.id: n for n in chain})


def test_the_prefixes_are_the_countys_province_and_prefecture_in_every_written_form() -> None:
    assert outer_prefixes([_county("天山区")]) == {
        "新疆维吾尔自治区",
        "新疆",
        "新疆自治区",
        "乌鲁木齐市",
        "乌鲁木齐",
    }
    assert outer_prefixes([_county("皋兰县")]) == {"甘肃省", "甘肃", "兰州市", "兰州"}
    # A county directly under its municipality has no prefecture to write.
    assert outer_prefixes([_county("浦东新区")]) == {"上海市", "上海"}


def test_a_county_name_others_share_is_made_exact_by_an_alias() -> None:
    assert outer_prefixes([_county("朝阳区", "北京市朝阳区")]) == {"北京市", "北京"}
    # Without one, the prefixes of every county of that name are stripped.
    assert outer_prefixes([_county("朝阳区")]) == {
        "北京市",
        "北京",
        "吉林省",
        "吉林",
        "长春市",
        "长春",
    }


@pytest.mark.parametrize(
    "written",
    [
        ADDRESS,
        "新疆维吾尔自治区乌鲁木齐市" + ADDRESS,
        "新疆乌鲁木齐" + ADDRESS,
        "乌鲁木齐市" + ADDRESS,
        "新疆烏魯木齊市天山區燕兒窩街道和平社區幸福小區3號樓2單元501室",
    ],
)
def test_an_address_of_any_county_resolves_with_its_province_and_prefecture(written: str) -> None:
    resolution = _index(_county("天山区")).resolve(written)
    assert resolution.node.id == "home"
