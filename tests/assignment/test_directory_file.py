"""The directory file: round trips, errors naming row and field, imports all or nothing, and no
robot: notify's groups file is where robots live."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridline_cli.main import app
from services.assignment import directory_file
from services.assignment.demo_county import generate
from services.assignment.directory import Directory, Group, MicroGrid, Person, Role
from services.assignment.grid import Node, NodeKind


def _small() -> Directory:
    nodes = [
        Node("county", NodeKind.COUNTY, "皋兰县", None, "p-county"),
        Node("town", NodeKind.TOWNSHIP, "石洞镇", "county"),
        Node("cm", NodeKind.COMMUNITY, "城北社区", "town"),
        Node("g", NodeKind.GRID, "三汇小区", "cm", aliases=("三汇", "三汇楼院")),
        Node("b", NodeKind.BUILDING, "1号楼", "g"),
        Node("u", NodeKind.UNIT, "1单元", "b", "p-a"),
        Node("h", NodeKind.HOUSEHOLD, "101室", "u", address="三汇1号楼1单元101", micro_grid_id="m"),
    ]  # fmt: skip
    people = [
        Person("p-county", "县联防办", Role.COUNTY_OFFICE, "13900000000", "grp-county"),
        Person("p-a", "王伟", Role.CADRE, "13900000001", "grp-a", "wx-a", True, "p-b"),
        Person("p-b", "李娜", Role.CADRE, "13900000002", "grp-b"),
        Person("p-m", "赵强", Role.MICRO_GRID_LEADER, "13900000003", "grp-b"),
    ]
    groups = [
        Group("grp-county", "县联防办群"),
        Group("grp-a", "王伟工作群"),
        Group("grp-b", "李娜工作群"),
    ]
    return Directory(nodes, people, groups, [MicroGrid("m", "101室等联户", "p-m")])


@pytest.mark.parametrize("suffix", [".csv", ".yaml", ".json"])
def test_a_directory_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"directory{suffix}"
    directory = _small()
    directory_file.write(directory, path)
    again = directory_file.read(path)
    assert again.nodes == directory.nodes
    assert again.people == directory.people
    assert again.groups == directory.groups
    assert again.micro_grids == directory.micro_grids


def test_the_demo_county_is_written_in_the_import_format(tmp_path: Path) -> None:
    path = tmp_path / "county.csv"
    result = CliRunner().invoke(app, ["directory", "demo-county", str(path)])
    assert result.exit_code == 0, result.output
    county = generate()
    again = directory_file.read(path)
    assert list(again.nodes.values()) == county.nodes
    assert list(again.people.values()) == county.people


def _bad_csv(path: Path) -> None:
    """The small directory with a bad kind on one row and a dangling parent on another."""
    directory_file.write(_small(), path)
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        if row["id"] == "b":
            row["kind"] = "tower"
        if row["id"] == "h":
            row["parent_id"] = "nowhere"
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, directory_file.CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_errors_name_the_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    _bad_csv(path)
    with pytest.raises(directory_file.DirectoryFileError) as raised:
        directory_file.read(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    building_row = next(i for i, line in enumerate(lines, 1) if line.startswith("node,b,"))
    household_row = next(i for i, line in enumerate(lines, 1) if line.startswith("node,h,"))
    found = {(e.where, e.field) for e in raised.value.errors}
    assert (f"row {building_row}", "kind") in found
    assert (f"row {household_row}", "parent_id") in found


def _with_robots(path: Path, robots: dict[str, tuple[str, str]]) -> None:
    """The small directory as a CSV of the release that kept robots: their two columns, filled
    for the groups given (webhook, secret)."""
    directory_file.write(_small(), path)
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        webhook, secret = robots.get(row["id"], ("", "")) if row["record"] == "group" else ("", "")
        row.update(robot_webhook=webhook, robot_secret=secret)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, [*directory_file.CSV_COLUMNS, *directory_file.ROBOT_FIELDS])
        writer.writeheader()
        writer.writerows(rows)


def test_a_robot_in_the_directory_is_refused_naming_notify_s_groups_file(tmp_path: Path) -> None:
    path = tmp_path / "robots.csv"
    _with_robots(path, {"grp-county": ("https://robot.example/hook", "sealed:c2VjcmV0")})
    with pytest.raises(directory_file.DirectoryFileError) as raised:
        directory_file.read(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    county_row = next(i for i, line in enumerate(lines, 1) if line.startswith("group,grp-county,"))
    assert {(e.where, e.field) for e in raised.value.errors} == {
        (f"row {county_row}", "robot_webhook"), (f"row {county_row}", "robot_secret"),
    }  # fmt: skip
    assert all("GRIDLINE_NOTIFY_GROUPS_FILE" in e.message for e in raised.value.errors)
    # A file of that release without any robot has only empty robot columns: it imports.
    _with_robots(path, {})
    assert directory_file.read(path).groups == _small().groups


def test_yaml_errors_name_the_list_position_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "groups: [{id: g1, name: 群}]\n"
        "people:\n"
        "  - {id: p1, name: 王伟, role: cadre, phone: '13900000001', group_id: g1}\n"
        "  - {id: p2, name: 李娜, role: mayor, phone: 'call me', group_id: nope}\n"
        "nodes: [{id: c, kind: county, name: 县}]\n",
        encoding="utf-8",
    )
    with pytest.raises(directory_file.DirectoryFileError) as raised:
        directory_file.read(path)
    found = {(e.where, e.field) for e in raised.value.errors}
    assert found == {("people[1]", "role"), ("people[1]", "phone")}


def test_a_failed_import_names_row_and_field_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDLINE_DATA_DIR", str(tmp_path))
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.csv"
    directory_file.write(_small(), good)
    runner = CliRunner()
    assert runner.invoke(app, ["directory", "import", str(good)]).exit_code == 0
    before = tmp_path / "before.json"
    assert runner.invoke(app, ["directory", "export", str(before)]).exit_code == 0

    _bad_csv(bad)
    result = runner.invoke(app, ["directory", "import", str(bad)])
    assert result.exit_code == 1
    assert "field 'kind'" in result.output and "field 'parent_id'" in result.output
    assert "nothing was changed" in result.output

    after = tmp_path / "after.json"
    assert runner.invoke(app, ["directory", "export", str(after)]).exit_code == 0
    assert directory_file.read(after).nodes == directory_file.read(before).nodes
