"""Placing a report: which household, which task, who is told. No Kafka, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.ids import derived_id
from gridline.links import task_link
from gridline.timestamps import to_timestamp
from services.assignment.directory import Directory, Link, NodeKind, Role

CHAIN_LEVELS = {
    Role.CADRE: common_pb2.CHAIN_LEVEL_CADRE,
    Role.LIAISON: common_pb2.CHAIN_LEVEL_LIAISON,
    Role.COMMUNITY_STAFF: common_pb2.CHAIN_LEVEL_COMMUNITY,
    Role.TOWNSHIP_OFFICE: common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
    Role.COUNTY_OFFICE: common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
}
RISK_NAMES = {
    common_pb2.RISK_LEVEL_LOW: "低",
    common_pb2.RISK_LEVEL_MEDIUM: "中",
    common_pb2.RISK_LEVEL_HIGH: "高",
}


def responsible(link: Link) -> common_pb2.Responsible:
    """The contract form of one chain level."""
    return common_pb2.Responsible(
        level=CHAIN_LEVELS[link.role],
        person_id=link.person.id,
        person_name=link.person.name,
        phone=link.person.phone,
        group_id=link.group.id,
        group_name=link.group.name,
    )


@dataclass(frozen=True)
class Placement:
    """What a report became: its task and the notice to whoever must act first."""

    node_id: str
    triage: bool
    task: events_pb2.TaskEvent
    notification: events_pb2.Notification


def place(
    report: events_pb2.ReportAccepted, directory: Directory, *, now: datetime, link_base: str
) -> Placement:
    """Place a report on its household, or on the community (triage) when the address matches none.

    Every report yields exactly one task; ids derive from the report id so replays repeat them.
    """
    household = directory.resolve(report.address)
    node = household or directory.triage_node(report.address)
    chain = directory.chain(node.id)
    first = chain[0]
    task_id = derived_id("task", report.report_id)
    grid = directory.ancestor(node.id, NodeKind.GRID)
    community = directory.ancestor(node.id, NodeKind.COMMUNITY)
    grid_id = grid.id if grid else (community.id if community else node.id)
    summary = (
        f"{report.name_masked}（身份证{report.id_number_masked}，电话{report.phone_masked}）"
        f"自{report.origin_name}（{RISK_NAMES.get(report.origin_risk, '未知')}风险地区）来，"
        f"住{report.address}"
    )
    task = events_pb2.TaskEvent(
        task_id=task_id,
        kind=events_pb2.TASK_EVENT_KIND_ASSIGNED,
        report_id=report.report_id,
        person_key=report.person_key,
        household_id=household.id if household else "",
        grid_id=grid_id,
        community_id=community.id if community else "",
        triage=household is None,
        assignee=responsible(first),
        origin_risk=report.origin_risk,
        summary=summary,
        accepted_at=report.accepted_at,
        occurred_at=to_timestamp(now),
        actor="assignment",
    )
    link = task_link(link_base, task_id)
    title = "地址待核实的来返人员" if household is None else "新来返人员待核实"
    notification = events_pb2.Notification(
        notification_id=derived_id("notice", task_id, "assigned", first.group.id),
        kind=events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
        recipient=responsible(first),
        title=title,
        body=f"{summary}。请尽快核实并在链接中确认接收。",
        task_id=task_id,
        report_id=report.report_id,
        link=link,
        created_at=to_timestamp(now),
        report_accepted_at=report.accepted_at,
    )
    return Placement(
        node_id=node.id, triage=household is None, task=task, notification=notification
    )
