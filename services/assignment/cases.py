"""One case per person: a later report of someone whose case is open enriches it. No Kafka.

Intake marks each report with its person's case (`case_report_id`: the first report within the
case window). Assignment keeps one task per open case; a later report joins it and its holder is
told once what the new report adds: who reported, when, a higher risk, a better or different
address. A higher risk also changes the task: escalation hears of it on tasks.v1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridline.contracts.enums import RISK_LEVELS, chain_level, risk_level, risk_zh, source_zh
from gridline.contracts.notices import TaskRef, build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.ids import derived_id
from gridline.timestamps import from_timestamp, to_timestamp, zh_time
from services.assignment.address_index import Resolution
from services.assignment.directory import Directory, Link
from services.assignment.grid import NodeKind
from services.assignment.placement import responsible
from services.assignment.risk import Decision


@dataclass(frozen=True, slots=True)
class Case:
    """An open case as assignment holds it: the report that opened it and the task it became."""

    report_id: str
    task_id: str
    node_id: str
    grid_id: str
    triage: bool
    risk: int  # the highest risk its reports decided so far (RiskLevel)
    assignee_id: str
    holder_group_id: str
    holder_level: int
    measure_id: str = ""
    policy_version: str = ""


def case_id(report: events_pb2.ReportAccepted) -> str:
    """Intake's case of the report: the first report of the person, else the report itself.

    A first report looks up its own id too, so it joins a case that a later report of the same
    person opened because it arrived first.
    """
    return report.case_report_id or report.report_id


def holder(directory: Directory, case: Case) -> common_pb2.Responsible:
    """Who to tell about the case: its assignee while their group holds it, else that group."""
    person = directory.people.get(case.assignee_id)
    group = directory.groups.get(case.holder_group_id)
    if person is not None and group is not None and person.group_id == group.id:
        return responsible(Link(role=person.role, person=person, group=group))
    return common_pb2.Responsible(
        level=chain_level(case.holder_level),
        group_id=case.holder_group_id,
        group_name=group.name if group else "",
    )


def raises_risk(case: Case, decision: Decision) -> bool:
    """Whether the later report's decided risk is above every earlier report of the case."""
    return RISK_LEVELS[decision.risk] > case.risk


def _address_news(case: Case, report: events_pb2.ReportAccepted, resolution: Resolution) -> str:
    if case.triage and resolution.household is not None:
        return f"新报告的住址能对应到户：{report.address}，请据此核实后派给该户的包户干部。"
    if resolution.node.id != case.node_id:
        return f"新报告的住址与原报告不同：{report.address}，请核实。"
    return ""


def enrichment(
    case: Case,
    report: events_pb2.ReportAccepted,
    *,
    decision: Decision,
    resolution: Resolution,
    recipient: common_pb2.Responsible,
    link: str,
    now: datetime,
) -> events_pb2.Notification:
    """The one notice telling the case's holder that another report of the person came in.

    Its id derives from the case's task and the report, so a replay repeats it.
    """
    reported_at = from_timestamp(report.accepted_at) if report.HasField("accepted_at") else now
    source = source_zh(report.source)
    parts = [
        f"{report.name_masked}（身份证{report.id_number_masked}）已在跟进，"
        f"{source}于{zh_time(reported_at)}再次报告此人，"
        "并入原任务，无需另行接收。"
    ]
    higher = raises_risk(case, decision)
    if higher:
        parts.append(
            f"新报告自{report.origin_name}来，按{risk_zh(RISK_LEVELS[decision.risk])}地区"
            f"来返人员管理（此前为{risk_zh(case.risk)}），措施改为{decision.measure.name}，"
            "请按新措施落实。"
        )
    address = _address_news(case, report, resolution)
    if address:
        parts.append(address)
    return build_notice(
        derived_id("notice", case.task_id, "enriched", report.report_id),
        events_pb2.NOTIFICATION_KIND_CASE_ENRICHED,
        recipient,
        title="同一人员再次被报告：风险更高" if higher else "同一人员再次被报告",
        body="".join(parts),
        at=now,
        about=TaskRef(case.task_id, report.report_id, link, report.accepted_at),
        # News of a low-risk case already followed up may wait for an office's morning.
        deferrable=not higher and case.risk == common_pb2.RISK_LEVEL_LOW,
    )


def risk_raised(
    directory: Directory,
    case: Case,
    report: events_pb2.ReportAccepted,
    *,
    decision: Decision,
    now: datetime,
) -> events_pb2.TaskEvent:
    """The tasks.v1 event telling escalation that a later report raised the case's risk.

    It names the new risk, measure and policy version and the report that raised them; call it
    only when `raises_risk`. `report_id` stays the task's own report.
    """
    node = directory.nodes.get(case.node_id)
    return events_pb2.TaskEvent(
        task_id=case.task_id,
        kind=events_pb2.TASK_EVENT_KIND_RISK_RAISED,
        report_id=case.report_id,
        person_key=report.person_key,
        household_id=case.node_id if node is not None and node.kind is NodeKind.HOUSEHOLD else "",
        grid_id=case.grid_id,
        triage=case.triage,
        assignee=holder(directory, case),
        origin_risk=report.origin_risk,
        accepted_at=report.accepted_at,
        occurred_at=to_timestamp(now),
        actor="assignment",
        decided_risk=risk_level(RISK_LEVELS[decision.risk]),
        measure_id=decision.measure_id,
        measure_name=decision.measure.name,
        policy_version=decision.policy_version,
        raised_by_report_id=report.report_id,
    )


def risk_raised_event_id(case: Case, report: events_pb2.ReportAccepted) -> str:
    """The raise's event id, from the case's task and the report, so a replay repeats it."""
    return derived_id("task-event", case.task_id, "risk-raised", report.report_id)
