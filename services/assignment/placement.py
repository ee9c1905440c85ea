"""Placing a report: which household, which task, who is told. No Kafka, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gridline.contracts.enums import RISK_LEVELS, risk_level, risk_zh, source_zh
from gridline.contracts.notices import TaskRef, build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.ids import derived_id
from gridline.links import PageLinks
from gridline.links import Role as LinkRole
from gridline.timestamps import SHANGHAI, from_timestamp, to_timestamp, zh_date, zh_time
from services.assignment.assignee import CadreLoad, choose
from services.assignment.directory import Directory, Link, Person, Role
from services.assignment.grid import NodeKind
from services.assignment.risk import Decision

CHAIN_LEVELS = {
    Role.CADRE: common_pb2.CHAIN_LEVEL_CADRE,
    Role.LIAISON: common_pb2.CHAIN_LEVEL_LIAISON,
    Role.COMMUNITY_STAFF: common_pb2.CHAIN_LEVEL_COMMUNITY,
    Role.TOWNSHIP_OFFICE: common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
    Role.COUNTY_OFFICE: common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
    # Told beside the cadre, at the cadre's rung; never a level work escalates to.
    Role.MICRO_GRID_LEADER: common_pb2.CHAIN_LEVEL_CADRE,
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
class PlacedReport:
    """What a report became: its task, the notice to whoever must act first, and the notice
    to the household's micro-grid leader when it has one."""

    node_id: str
    triage: bool
    task: events_pb2.TaskEvent
    notification: events_pb2.Notification
    leader_notification: events_pb2.Notification | None = None

    @property
    def notifications(self) -> list[events_pb2.Notification]:
        """Every notice to publish, the assignee's first."""
        extra = [self.leader_notification] if self.leader_notification else []
        return [self.notification, *extra]


def _link(directory: Directory, person: Person) -> Link:
    return Link(role=person.role, person=person, group=directory.groups[person.group_id])


def _follow_up(
    decision: Decision, report: events_pb2.ReportAccepted, now: datetime
) -> events_pb2.FollowUpPlan:
    # The measure counts from arrival; a report without an arrival time counts from now.
    arrived = from_timestamp(report.arrived_at) if report.HasField("arrived_at") else now
    return events_pb2.FollowUpPlan(
        plan_id=decision.plan_id,
        measure_days=decision.measure.days,
        test_days=decision.measure.test_days,
        verify_within_hours=decision.plan.verify_within_hours,
        home_visit=decision.plan.home_visit,
        check_in_times=decision.plan.check_in_times,
        verify_by=to_timestamp(now + timedelta(hours=decision.plan.verify_within_hours)),
        measure_ends_at=to_timestamp(arrived + timedelta(days=decision.measure.days)),
    )


def measure_text(decision: Decision, plan: events_pb2.FollowUpPlan) -> str:
    """The decided risk and measure with its dates, as the assignee reads it."""
    said = f"按{risk_zh(RISK_LEVELS[decision.risk])}地区来返人员管理，措施：{decision.measure.name}"
    if plan.measure_days:
        ends = from_timestamp(plan.measure_ends_at).astimezone(SHANGHAI)
        starts = ends - timedelta(days=plan.measure_days)
        said += f"（{zh_date(starts)}至{zh_date(ends)}）"
    if plan.test_days:
        said += "，第" + "、".join(str(day) for day in plan.test_days) + "天做核酸检测"
    return said + "。"


def verify_text(plan: events_pb2.FollowUpPlan) -> str:
    """What the assignee must do by when: the plan's verification deadline."""
    how = "入户核实" if plan.home_visit else "核实（可电话核实）"
    return f"请于{zh_time(from_timestamp(plan.verify_by))}前{how}，并在任务页确认接收。"


def place(
    report: events_pb2.ReportAccepted,
    directory: Directory,
    *,
    now: datetime,
    links: PageLinks,
    decision: Decision,
    load: CadreLoad | None = None,
) -> PlacedReport:
    """Place a report on its household (else unit or building), else triage at the community.

    Every report yields exactly one task; ids derive from the report id so replays repeat them.
    The assignee follows `choose` (the cadre, on leave their backup, else the least loaded);
    the measure and plan come from the policy `decision`.
    """
    resolution = directory.locate(report.address)
    node = resolution.node
    household = resolution.household
    first = choose(directory, node.id, load or CadreLoad()).link
    assignee = responsible(first)
    task_id = derived_id("task", report.report_id)
    grid = directory.ancestor(node.id, NodeKind.GRID)
    community = directory.ancestor(node.id, NodeKind.COMMUNITY)
    township = directory.ancestor(node.id, NodeKind.TOWNSHIP)
    grid_id = grid.id if grid else (community.id if community else node.id)
    # Names, never ids: the community and the compound (grid) as people call them.
    where = "".join(n.name for n in (community, grid) if n is not None) or node.name
    arrived = from_timestamp(report.arrived_at) if report.HasField("arrived_at") else None
    summary = (
        f"{where}：{report.name_masked}（身份证{report.id_number_masked}，"
        f"电话{report.phone_masked}），"
        f"{zh_time(arrived) + '自' if arrived else '自'}{report.origin_name}来，"
        f"住{report.address}，报告来源：{source_zh(report.source)}"
    )
    task = events_pb2.TaskEvent(
        task_id=task_id,
        kind=events_pb2.TASK_EVENT_KIND_ASSIGNED,
        report_id=report.report_id,
        person_key=report.person_key,
        household_id=household.id if household else "",
        grid_id=grid_id,
        community_id=community.id if community else "",
        township_id=township.id if township else "",
        triage=resolution.triage,
        assignee=assignee,
        origin_risk=report.origin_risk,
        summary=summary,
        accepted_at=report.accepted_at,
        occurred_at=to_timestamp(now),
        actor="assignment",
        placed_node_id=node.id,
        placement_confidence=resolution.confidence,
        candidate_node_ids=resolution.candidates,
        decided_risk=risk_level(RISK_LEVELS[decision.risk]),
        measure_id=decision.measure_id,
        measure_name=decision.measure.name,
        follow_up=_follow_up(decision, report, now),
        policy_version=decision.policy_version,
        report_source=report.source,
    )

    def about(recipient: common_pb2.Responsible, role: LinkRole | None = None) -> TaskRef:
        # Each recipient's own link, issued while the assignee's group holds the new task.
        link = links.link(task_id, recipient, holder=first.group.id, at=now, role=role)
        return TaskRef(task_id, report.report_id, link, report.accepted_at)

    title = f"{where}有来返人员" + ("，地址未能对应到户" if household is None else "待核实")
    notification = build_notice(
        derived_id("notice", task_id, "assigned", first.group.id),
        events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
        assignee,
        title=title,
        body="".join(
            (f"{summary}。", measure_text(decision, task.follow_up), verify_text(task.follow_up))
        ),
        at=now,
        about=about(assignee),
    )
    leader = directory.micro_grid_leader(household.id) if household else None
    leader_notification = None
    if leader is not None:
        told = responsible(_link(directory, leader))
        leader_notification = build_notice(
            derived_id("notice", task_id, "assigned", told.group_id),
            events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
            told,
            title="联户内有来返人员",
            body=f"{summary}。包户干部{first.person.name}负责核实，请协助留意。",
            at=now,
            # A neighbour: the link shows the task and acts on nothing.
            about=about(told, LinkRole.MICRO_GRID_LEADER),
        )
    return PlacedReport(
        node_id=node.id,
        triage=resolution.triage,
        task=task,
        notification=notification,
        leader_notification=leader_notification,
    )
