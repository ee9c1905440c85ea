"""docs/directory.md's example imports as it is, places what residents write, and the guide
explains every column the file format has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridline_cli.main import app
from services.assignment import directory_file

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "directory.csv"


def test_the_example_imports_and_exports_back_unchanged(tmp_path: Path) -> None:
    runner = CliRunner(env={"GRIDLINE_DATABASE_URL": None})
    where = ["--data-dir", str(tmp_path)]
    imported = runner.invoke(app, ["directory", "import", str(EXAMPLE), *where])
    assert imported.exit_code == 0, imported.output
    assert "imported 22 nodes and 9 people" in imported.output
    exported = runner.invoke(app, ["directory", "export", str(tmp_path / "back.csv"), *where])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "back.csv").read_text(encoding="utf-8") == EXAMPLE.read_text("utf-8")


@pytest.mark.parametrize(
    ("written", "household"),
    [
        ("甘肃省兰州市榆中县城关镇兴隆社区栖云小区1号楼1单元101室", "yz-cg-xl-qy-b1-u1-101"),
        ("榆中县城关镇兴隆社区栖云小区1号楼1单元202室", "yz-cg-xl-qy-b1-u1-202"),
        ("兴隆社区栖云苑1号楼2单元102", "yz-cg-xl-qy-b1-u2-102"),
        ("兰州市榆中县文成楼院1-1-101", "yz-cg-xl-wc-b1-u1-101"),
    ],
)
def test_the_example_places_addresses_as_residents_write_them(written: str, household: str) -> None:
    directory = directory_file.read(EXAMPLE)
    assert directory.resolve(written) == directory.nodes[household]


def test_the_example_has_every_chain_level_and_a_micro_grid_leader() -> None:
    directory = directory_file.read(EXAMPLE)
    chain = directory.chain("yz-cg-xl-qy-b1-u1-101")
    assert [link.role.value for link in chain] == [
        "cadre", "liaison", "community_staff", "township_office", "county_office",
    ]  # fmt: skip
    leader = directory.micro_grid_leader("yz-cg-xl-qy-b1-u1-101")
    assert leader is not None and leader.id == "p-m01"


def test_the_guide_explains_every_column_of_every_record() -> None:
    guide = (DOCS / "directory.md").read_text(encoding="utf-8")
    header = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == directory_file.CSV_COLUMNS
    assert header in guide
    for kind, row in directory_file.ROWS.items():
        section = guide.split(f"### `{kind}`", 1)[1].split("\n### ", 1)[0]
        explained = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
        assert explained == set(row.model_fields), kind
