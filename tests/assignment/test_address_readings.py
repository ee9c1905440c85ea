"""How an address is read when its names can be read more than one way: administrative names
written without their suffix that are also the core of a compound's name, short aliases inside
longer names, and addresses that contradict themselves."""

from __future__ import annotations

import pytest

from services.assignment.address_index import AddressIndex
from services.assignment.grid import Node, NodeKind

# 城关 is the township and a community without their suffixes, and the core of 城关花园, which
# lies in the other community; 东岗 is that community and the core of 东岗新村 in 城关社区.
COMPOUNDS = {
    "cg-gd": ("城关花园", "dg"),
    "cg-dg": ("东岗新村", "cg"),
    "cg-fy": ("福苑小区", "cg"),
    "cg-jf": ("金福苑", "dg"),
    "cg-fh": ("福苑花园", "dg"),
}


def _index() -> AddressIndex:
    nodes = [
        Node("county", NodeKind.COUNTY, "永登县", None),
        Node("town", NodeKind.TOWNSHIP, "城关镇", "county"),
        Node("cg", NodeKind.COMMUNITY, "城关社区", "town"),
        Node("dg", NodeKind.COMMUNITY, "东岗社区", "town"),
    ]
    for grid_id, (name, community) in COMPOUNDS.items():
        nodes.append(Node(grid_id, NodeKind.GRID, name, community))
        for building in (1, 2, 3):
            building_id = f"{grid_id}-b{building}"
            nodes.append(Node(building_id, NodeKind.BUILDING, f"{building}号楼", grid_id))
            unit_id = f"{building_id}-u1"
            nodes.append(Node(unit_id, NodeKind.UNIT, "1单元", building_id))
            community_name = "城关社区" if community == "cg" else "东岗社区"
            address = f"永登县城关镇{community_name}{name}{building}号楼1单元101室"
            nodes.append(
                Node(f"{unit_id}-101", NodeKind.HOUSEHOLD, "101室", unit_id, address=address)
            )
    return AddressIndex({n.id: n for n in nodes})


INDEX = _index()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # Township and community without their suffix before a compound.
        ("永登城关东岗城关花园2#楼1单元101", "cg-gd-b2-u1-101"),
        ("甘肃兰州永登城关城关东岗新村3号楼1单元101室", "cg-dg-b3-u1-101"),
        ("城关镇城关东岗新村1#1单元101", "cg-dg-b1-u1-101"),
        ("城关东岗社区城关花园1号楼1单元101室", "cg-gd-b1-u1-101"),
        # A community's other written ending, and the community written after the compound.
        ("城关镇东岗居委会城关花园3号楼1单元101", "cg-gd-b3-u1-101"),
        ("东岗新村（城关社区）2号楼1单元101室", "cg-dg-b2-u1-101"),
        # The core alone before the numbers is the compound's short name.
        ("东岗2号楼1单元101室", "cg-dg-b2-u1-101"),
        # The longest name wins over a short alias inside it (福苑 of 福苑小区 in 金福苑).
        ("金福苑3号楼1单元101室", "cg-jf-b3-u1-101"),
        ("城关镇东岗金福苑1#楼1单元101", "cg-jf-b1-u1-101"),
        # Each core is both a community and a compound: the order of the address decides.
        ("城关东岗1号楼1单元101室", "cg-dg-b1-u1-101"),
        ("东岗城关1号楼1单元101室", "cg-gd-b1-u1-101"),
        # A short name two compounds share, made one by the community named before it.
        ("东岗福苑1号楼1单元101室", "cg-fh-b1-u1-101"),
    ],
)
def test_names_without_their_suffix_are_read_the_way_the_rest_makes_sense(
    written: str, expected: str
) -> None:
    assert INDEX.resolve(written).node.id == expected


@pytest.mark.parametrize(
    ("written", "community"),
    [
        # Only administrative names: the compound alias among them is not a compound.
        ("永登县城关镇东岗社区", "dg"),
        ("城关东岗社区马家湾三组", "dg"),
    ],
)
def test_administrative_names_alone_go_to_their_community(written: str, community: str) -> None:
    resolution = INDEX.resolve(written)
    assert resolution.triage
    assert resolution.node.id == community


def test_an_address_whose_community_does_not_hold_its_compound_goes_to_triage() -> None:
    # 城关花园 lies in 东岗社区: the address contradicts itself, so no household is sure.
    resolution = INDEX.resolve("城关社区城关花园2号楼1单元101室")
    assert resolution.triage
    assert resolution.node.id == "cg"
    assert resolution.candidates == ("cg-gd-b2-u1-101",)


def test_a_short_name_two_compounds_share_goes_to_triage_with_both() -> None:
    resolution = INDEX.resolve("福苑1号楼1单元101室")
    assert resolution.triage
    assert set(resolution.candidates) == {"cg-fy-b1-u1-101", "cg-fh-b1-u1-101"}
