"""The Directory's gRPC calls answered from the directory in memory."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gridline.directory_client import DirectoryClient
from gridline.settings import Settings
from services.assignment.demo_county import TOTAL_HOUSEHOLDS, generate
from services.assignment.directory import Directory
from services.assignment.grid import Node, NodeKind
from tests.assignment.serving import directory_server


def test_a_grid_counts_the_households_of_its_buildings_and_an_empty_grid_counts_none() -> None:
    nodes = [
        Node("c", NodeKind.COUNTY, "县", None),
        Node("t", NodeKind.TOWNSHIP, "镇", "c"),
        Node("cm", NodeKind.COMMUNITY, "社区", "t"),
        Node("g1", NodeKind.GRID, "一网格", "cm"),
        Node("g2", NodeKind.GRID, "二网格", "cm"),
        Node("b1", NodeKind.BUILDING, "1号楼", "g1"),
        Node("u1", NodeKind.UNIT, "1单元", "b1"),
        Node("u2", NodeKind.UNIT, "2单元", "b1"),
        Node("h1", NodeKind.HOUSEHOLD, "101室", "u1", address="1号楼1单元101室"),
        Node("h2", NodeKind.HOUSEHOLD, "102室", "u1", address="1号楼1单元102室"),
        Node("h3", NodeKind.HOUSEHOLD, "201室", "u2", address="1号楼2单元201室"),
    ]
    assert Directory(nodes, [], []).grid_households() == {"g1": 3, "g2": 0}


async def test_every_demo_grid_with_its_household_count_over_grpc(tmp_path: Path) -> None:
    county = generate()
    directory = Directory(county.nodes, county.people, county.groups)
    # A household's id starts with its grid's: "cm03-g02-b02-u2-201" lies in grid "cm03-g02".
    expected = Counter(
        "-".join(n.id.split("-")[:2]) for n in county.nodes if n.kind is NodeKind.HOUSEHOLD
    )
    async with (
        directory_server(directory, Settings(data_dir=tmp_path)) as target,
        DirectoryClient(target) as client,
    ):
        counts = await client.grid_households()
    grids = sorted(n.id for n in county.nodes if n.kind is NodeKind.GRID)
    assert list(counts) == grids
    assert len(grids) == 46
    assert counts == expected
    assert sum(counts.values()) == TOTAL_HOUSEHOLDS
