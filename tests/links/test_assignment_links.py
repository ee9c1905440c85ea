"""The links assignment puts in the notices of a new task: the cadre's acts, the micro-grid
leader's only looks, and each names its own recipient under the task's holder."""

from __future__ import annotations

from datetime import UTC, datetime

from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.links import Role
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.placement import place
from tests.assignment.support import LINKS, decision
from tests.links.conftest import query_of

HOUSEHOLD = "cm02-g01-b02-u1-101"


def test_a_new_task_s_cadre_may_act_and_its_micro_grid_leader_may_only_look() -> None:
    county = generate()
    directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
    address = directory.nodes[HOUSEHOLD].address
    assert address is not None
    at = datetime(2026, 1, 20, 1, 0, tzinfo=UTC)
    report = events_pb2.ReportAccepted(
        report_id="r-links", person_key="k", name_masked="王*", origin_name="上海市浦东新区",
        origin_risk=common_pb2.RISK_LEVEL_MEDIUM, address=address,
    )  # fmt: skip
    placed = place(report, directory, now=at, links=LINKS, decision=decision())
    leader_notice = placed.leader_notification
    assert leader_notice is not None
    task_id, holder = placed.task.task_id, placed.task.assignee.group_id

    cadre = LINKS.check(task_id, query_of(placed.notification.link), at)
    assert (cadre.recipient, cadre.role, cadre.holder) == (
        placed.task.assignee.person_id, Role.CADRE, holder,
    )  # fmt: skip
    assert cadre.acts and cadre.issued_at == at

    leader = LINKS.check(task_id, query_of(leader_notice.link), at)
    assert (leader.recipient, leader.role, leader.holder) == (
        leader_notice.recipient.person_id, Role.MICRO_GRID_LEADER, holder,
    )  # fmt: skip
    assert not leader.acts
    assert leader_notice.link != placed.notification.link
