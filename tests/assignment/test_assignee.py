"""Who takes a report: the cadre, on leave the backup, else the least loaded; leaders are told."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridline.contracts.v1 import common_pb2, events_pb2
from services.assignment.assignee import CadreLoad, choose
from services.assignment.demo_county import County, generate
from services.assignment.directory import Directory, Role
from services.assignment.placement import PlacedReport, place
from tests.assignment.support import LINKS, decision

HOUSEHOLD = "cm02-g01-b02-u1-101"


@pytest.fixture(scope="module")
def county() -> County:
    return generate()


@pytest.fixture
def directory(county: County) -> Directory:
    """A fresh directory per test: duty changes must not leak between tests."""
    return Directory(county.nodes, county.people, county.groups, county.micro_grids)


def _report(report_id: str, address: str) -> events_pb2.ReportAccepted:
    return events_pb2.ReportAccepted(
        report_id=report_id,
        person_key=f"k-{report_id}",
        name_masked="王*",
        id_number_masked="**************1234",
        phone_masked="139****0000",
        origin_name="上海市浦东新区",
        origin_risk=common_pb2.RISK_LEVEL_MEDIUM,
        address=address,
    )


def _place(
    directory: Directory, report_id: str, load: CadreLoad, household: str = HOUSEHOLD
) -> PlacedReport:
    address = directory.nodes[household].address
    assert address is not None
    placed = place(
        _report(report_id, address),
        directory,
        now=datetime.now(UTC),
        links=LINKS,
        decision=decision(),
        load=load,
    )
    load.add(placed.task.assignee.person_id)
    return placed


def test_a_cadre_on_leave_gets_no_new_tasks_the_backup_does(directory: Directory) -> None:
    load = CadreLoad()
    cadre_id = directory.nodes["cm02-g01-b02-u1"].responsible_id
    assert cadre_id is not None
    before = _place(directory, "r-before", load)
    assert before.task.assignee.person_id == cadre_id

    backup_id = directory.people[cadre_id].backup_id
    assert backup_id is not None and backup_id != cadre_id
    directory.put_person(directory.duty_changed(cadre_id, on_leave=True, backup_id=backup_id))
    during = [_place(directory, f"r-leave-{i}", load) for i in range(5)]
    assert {p.task.assignee.person_id for p in during} == {backup_id}
    assert {p.notification.recipient.person_id for p in during} == {backup_id}
    assert all(p.notification.recipient.group_id == f"grp-{backup_id}" for p in during)
    assert load.of(cadre_id) == 1

    directory.put_person(directory.duty_changed(cadre_id, on_leave=False, backup_id=backup_id))
    assert _place(directory, "r-back", load).task.assignee.person_id == cadre_id


def test_without_a_backup_on_duty_the_least_loaded_cadre_of_the_grid_takes_it(
    directory: Directory,
) -> None:
    cadre_id = directory.nodes["cm02-g01-b02-u1"].responsible_id
    assert cadre_id is not None
    backup_id = directory.people[cadre_id].backup_id
    assert backup_id is not None
    directory.put_person(directory.duty_changed(cadre_id, on_leave=True, backup_id=backup_id))
    directory.put_person(directory.duty_changed(backup_id, on_leave=True, backup_id=None))
    colleagues = [c for c in directory.grid_cadres("cm02-g01") if not c.on_leave]
    assert len(colleagues) >= 2
    # Everyone but one colleague is busy: that one takes the report.
    idle = colleagues[-1].id
    load = CadreLoad({c.id: 3 for c in colleagues if c.id != idle})
    choice = choose(directory, HOUSEHOLD, load)
    assert choice.link.person.id == idle
    assert choice.reason == "least loaded in grid"


def test_duty_changes_are_checked(directory: Directory) -> None:
    cadre_id = directory.nodes["cm02-g01-b02-u1"].responsible_id
    assert cadre_id is not None
    with pytest.raises(ValueError, match="not another cadre"):
        directory.duty_changed(cadre_id, on_leave=True, backup_id="p-county")
    with pytest.raises(ValueError, match="not another cadre"):
        directory.duty_changed(cadre_id, on_leave=True, backup_id=cadre_id)
    with pytest.raises(ValueError, match="not a cadre"):
        directory.duty_changed("p-town", on_leave=True, backup_id=None)


def test_the_micro_grid_leader_is_told_with_masked_data(directory: Directory) -> None:
    placed = _place(directory, "r-leader", CadreLoad())
    leader = directory.micro_grid_leader(HOUSEHOLD)
    assert leader is not None and leader.role is Role.MICRO_GRID_LEADER
    notice = placed.leader_notification
    assert notice is not None
    assert notice.recipient.person_id == leader.id
    assert notice.task_id == placed.task.task_id
    assert "**************1234" in notice.body and "139****0000" in notice.body
    assert [n.notification_id for n in placed.notifications] == [
        placed.notification.notification_id,
        notice.notification_id,
    ]


def test_a_building_only_address_goes_to_a_cadre_of_that_building(directory: Directory) -> None:
    compound = directory.nodes["cm02-g01"].name
    placed = place(
        _report("r-building", f"城关社区{compound}2号楼"),
        directory,
        now=datetime.now(UTC),
        links=LINKS,
        decision=decision(),
    )
    building_cadres = {u.responsible_id for u in directory.children("cm02-g01-b02")}
    assert not placed.triage
    assert placed.task.placed_node_id == "cm02-g01-b02"
    assert placed.task.assignee.person_id in building_cadres
    assert placed.leader_notification is None


def test_every_household_is_in_a_micro_grid_of_three_to_five(county: County) -> None:
    sizes: dict[str, int] = {}
    for node in county.nodes:
        if node.kind == "household":
            assert node.micro_grid_id is not None
            sizes[node.micro_grid_id] = sizes.get(node.micro_grid_id, 0) + 1
    assert len(sizes) == len(county.micro_grids)
    # A unit with fewer than three households can only form a smaller one.
    assert sum(3 <= n <= 7 for n in sizes.values()) / len(sizes) > 0.97
    people = {p.id: p for p in county.people}
    assert all(people[m.leader_id].role is Role.MICRO_GRID_LEADER for m in county.micro_grids)
    assert generate().micro_grids == county.micro_grids
