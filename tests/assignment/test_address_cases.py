"""Address placement on the kept cases: how people really write addresses in the demo county."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from services.assignment import directory_file
from services.assignment.address_text import chinese_number, clean, parse_parts
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.grid import NodeKind

DATA = Path(__file__).parent / "data"
# Cases against the demo county, and against the example directory of the docs (榆中县).
CASES = DATA / "addresses.csv"
EXAMPLE_CASES = DATA / "addresses_example.csv"
EXAMPLE_DIRECTORY = Path(__file__).parents[2] / "docs" / "examples" / "directory.csv"


@pytest.fixture(scope="module")
def directory() -> Directory:
    county = generate()
    return Directory(county.nodes, county.people, county.groups)


def _cases(path: Path = CASES) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def _misses(directory: Directory, cases: list[dict[str, str]]) -> list[str]:
    """The cases not placed where expected, each checked to be no wrong household."""
    assert all(case["expected"] in directory.nodes for case in cases)
    misses: list[str] = []
    for case in cases:
        resolution = directory.locate(case["address"])
        if resolution.node.id == case["expected"]:
            continue
        misses.append(f"{case['variant']}: {case['address']} -> {resolution.node.id}")
        # Never a wrong household or unit: what is not placed right waits for a person at the
        # community (triage) or at the building's cadre, who sees what it could have meant.
        assert resolution.triage or resolution.node.kind is NodeKind.BUILDING, case
        assert resolution.candidates, case
        meant = {case["expected"], *(a.id for a in directory.ancestors(case["expected"]))}
        assert meant & set(resolution.candidates), case
    return misses


def test_kept_cases_land_on_the_right_place_or_go_to_triage_with_candidates(
    directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _cases()
    example = _cases(EXAMPLE_CASES)
    variants = Counter(case["variant"] for case in cases + example)
    assert len(cases) + len(example) >= 300
    for variant in ("alias", "dong", "zhuang", "full_width", "chinese_numerals", "traditional"):
        assert variants[variant] >= 10, variant
    # Administrative names without their suffix (石洞 of 石洞镇, 三川 of 三川社区), also where
    # they are the core of a compound's name too, and buildings written with # (3#楼, 3#2单元).
    for variant in ("no_suffix", "admin_core", "hash_building"):
        assert variants[variant] >= 25, variant
    misses = _misses(directory, cases)
    misses += _misses(directory_file.read(EXAMPLE_DIRECTORY), example)
    total = len(cases) + len(example)
    right = total - len(misses)
    ratio = right / total
    # The issue asks for the ratio to be shown with every test run.
    report = "\n  not placed: ".join([f"placed right: {right}/{total} = {ratio:.1%}", *misses])
    with capsys.disabled():
        print(f"\naddress cases {report}")  # noqa: T201
    assert ratio >= 0.97


def test_chinese_numerals_are_read_as_people_write_them() -> None:
    assert chinese_number("二十三") == 23
    assert chinese_number("十") == 10
    assert chinese_number("十五") == 15
    assert chinese_number("一百零二") == 102
    assert chinese_number("五零二") == 502
    assert chinese_number("两") == 2


def test_parts_are_found_in_each_written_form() -> None:
    written = ("23号楼2单元502室", "二十三栋二单元五零二", "２３幢２单元５０２号", "23-2-502")
    hashed = ("23#楼2单元502室", "23#2单元502", "23＃楼2-502", "23#-2-502", "23#栋二单元502")
    for tail in written + hashed:
        parts = parse_parts(clean(tail))
        assert (parts.building, parts.unit, parts.room) == (23, 2, 502), tail
    assert parse_parts(clean("23号楼")).unit is None
    assert parse_parts(clean("2单元502")).building is None
    assert clean("三匯小區 ３號樓") == "三汇小区3号楼"


def test_unit_and_building_placements_carry_a_lower_confidence(directory: Directory) -> None:
    exact = directory.locate("皋兰县石洞镇城北社区三汇小区1号楼1单元101室")
    unit = directory.locate("城北社区三汇小区3号楼2单元")
    building = directory.locate("三汇小区3号楼")
    assert exact.confidence == 1.0 and exact.node.kind is NodeKind.HOUSEHOLD
    assert unit.node.id == "cm01-g01-b03-u2" and 0 < unit.confidence < exact.confidence
    assert building.node.id == "cm01-g01-b03" and 0 < building.confidence < unit.confidence
    assert not unit.triage and not building.triage


def test_a_misspelt_compound_goes_to_triage_with_the_compounds_it_resembles(
    directory: Directory,
) -> None:
    resolution = directory.locate("城北社区三会小区3号楼2单元302室")
    assert resolution.triage
    assert resolution.node.id == "cm01"
    assert "cm01-g01" in resolution.candidates
