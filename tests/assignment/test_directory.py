"""The demo county, address resolution and chains, without Kafka or gRPC."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from gridline.contracts.v1 import common_pb2, events_pb2
from services.assignment.demo_county import TOTAL_HOUSEHOLDS, County, generate
from services.assignment.directory import Directory, Role
from services.assignment.grid import NodeKind
from services.assignment.placement import place
from tests.assignment.support import LINKS, decision


@pytest.fixture(scope="module")
def county() -> County:
    return generate()


@pytest.fixture(scope="module")
def directory(county: County) -> Directory:
    return Directory(county.nodes, county.people, county.groups)


def test_demo_county_has_gaolans_shape(county: County) -> None:
    kinds = Counter(n.kind for n in county.nodes)
    roles = Counter(p.role for p in county.people)
    assert kinds[NodeKind.HOUSEHOLD] == TOTAL_HOUSEHOLDS == 20_407
    assert kinds[NodeKind.COMMUNITY] == 5
    assert 1_800 <= roles[Role.CADRE] <= 2_200
    assert roles[Role.LIAISON] == kinds[NodeKind.GRID]
    assert len({p.group_id for p in county.people}) == len(county.people) == len(county.groups)


def test_demo_county_is_deterministic(county: County) -> None:
    again = generate()
    assert again.nodes == county.nodes
    assert again.people == county.people
    assert generate(seed=7).people != county.people


def test_every_unit_has_a_cadre_covering_a_few_units(county: County) -> None:
    units = [n for n in county.nodes if n.kind is NodeKind.UNIT]
    assert all(u.responsible_id for u in units)
    per_cadre = Counter(u.responsible_id for u in units)
    assert max(per_cadre.values()) <= 4


def test_address_resolves_as_written_with_or_without_county(directory: Directory) -> None:
    household = directory.nodes["cm01-g01-b01-u1-101"]
    assert household.address is not None
    assert directory.resolve(household.address) == household
    assert directory.resolve(household.address.removeprefix("皋兰县")) == household
    assert directory.resolve("甘肃省兰州市" + household.address) == household
    full_width = household.address.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    assert directory.resolve(full_width) == household
    assert directory.resolve(household.address.replace("号楼", " 号楼 ")) == household
    assert directory.resolve("皋兰县石洞镇城北社区不存在小区1号楼1单元101室") is None


def test_chain_runs_from_cadre_to_county_office(directory: Directory) -> None:
    chain = directory.chain("cm02-g03-b01-u1-101")
    assert [link.role for link in chain] == [
        Role.CADRE, Role.LIAISON, Role.COMMUNITY_STAFF, Role.TOWNSHIP_OFFICE, Role.COUNTY_OFFICE,
    ]  # fmt: skip
    unit = directory.nodes["cm02-g03-b01-u1"]
    assert chain[0].person.id == unit.responsible_id
    assert chain[2].group.name == "城关社区防控工作群"
    assert directory.chain("cm02")[0].role is Role.COMMUNITY_STAFF
    with pytest.raises(KeyError):
        directory.chain("nowhere")


def _report(address: str) -> events_pb2.ReportAccepted:
    return events_pb2.ReportAccepted(
        report_id="r-1",
        person_key="k",
        name_masked="张*",
        id_number_masked="**************1234",
        phone_masked="138****5678",
        origin_name="上海市浦东新区",
        origin_risk=common_pb2.RISK_LEVEL_HIGH,
        address=address,
    )


def test_placement_assigns_the_households_cadre(directory: Directory) -> None:
    household = directory.nodes["cm03-g02-b02-u2-201"]
    assert household.address is not None
    placed = place(
        _report(household.address),
        directory,
        now=datetime.now(UTC),
        links=LINKS,
        decision=decision(),
    )
    cadre = directory.chain(household.id)[0]
    assert not placed.triage
    assert placed.task.household_id == household.id
    assert placed.task.assignee.group_id == cadre.group.id
    assert placed.notification.recipient.group_id == cadre.group.id
    assert "**************1234" in placed.notification.body
    link = urlsplit(placed.notification.link)
    assert link.path == f"/t/{placed.task.task_id}"
    grant = LINKS.check(placed.task.task_id, dict(parse_qsl(link.query)), datetime.now(UTC))
    assert (grant.recipient, grant.role, grant.holder) == (cadre.person.id, "cadre", cadre.group.id)
    again = place(
        _report(household.address),
        directory,
        now=datetime.now(UTC),
        links=LINKS,
        decision=decision(),
    )
    assert again.task.task_id == placed.task.task_id
    assert again.notification.notification_id == placed.notification.notification_id


def test_unmatched_address_becomes_triage_at_the_named_community(directory: Directory) -> None:
    placed = place(
        _report("皋兰县石洞镇东湾社区新建平房12号"),
        directory,
        now=datetime.now(UTC),
        links=LINKS,
        decision=decision(),
    )
    assert placed.triage
    assert placed.task.household_id == ""
    assert placed.node_id == "cm04"
    assert placed.task.assignee.level == common_pb2.CHAIN_LEVEL_COMMUNITY


def test_address_naming_no_community_goes_to_the_township(directory: Directory) -> None:
    placed = place(
        _report("兰州火车站附近"),
        directory,
        now=datetime.now(UTC),
        links=LINKS,
        decision=decision(),
    )
    assert placed.triage
    assert placed.node_id == "town-01"
    assert placed.task.assignee.level == common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
