"""What the follow-up's notices say: each kind's Chinese title and body, as a cadre or an office
would write it. Each closing sentence fits its kind: a reminder asks for the check-in or test, a
missed step asks the level to see it done, a notice for information asks for nothing missed.

The task's summary names the person (masked), the origin and the address (compound, building,
unit); dates read 1月30日, times 1月30日 08:00 (Beijing time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridline.contracts.enums import CHAIN_LEVEL_ZH
from gridline.timestamps import SHANGHAI, zh_date, zh_time
from services.escalation import storage
from services.escalation.domain import MEASURE_ZH, Measure


@dataclass(frozen=True)
class Text:
    """A notice's title and body."""

    title: str
    body: str


def _day(moment: datetime) -> str:
    return zh_date(moment.astimezone(SHANGHAI).date())


def measure_of(task: storage.Task) -> str:
    """The measure as people name it, with its dates once started: 居家隔离（1月20日至2月3日）."""
    name = MEASURE_ZH[Measure(task.measure)] if task.measure else task.measure_name or "管控措施"
    if task.measure_started_at is not None and task.measure_ends_at is not None:
        return f"{name}（{_day(task.measure_started_at)}至{_day(task.measure_ends_at)}）"
    return name


def level_zh(level: int) -> str:
    """A chain level's office or role, as a notice names its recipient (`whom` below)."""
    return CHAIN_LEVEL_ZH.get(level, "上级")


def check_in_reminder(task: storage.Task, due: datetime) -> Text:
    """To the cadre, before a check-in."""
    return Text(
        f"健康打卡提醒：{zh_time(due)}",
        f"{task.summary}。{measure_of(task)}期间，{zh_time(due)}应完成健康打卡，"
        "请提醒本人按时测量体温并打卡。",
    )


def resident_check_in_reminder(task: storage.Task, due: datetime) -> Text:
    """To the person under the measure, before a check-in."""
    return Text(
        "健康打卡提醒",
        f"您正在{measure_of(task)}，请于{zh_time(due)}前测量体温，按打卡短信的格式回复完成打卡；"
        "如有发热、咳嗽等症状，请如实填报并告知包户干部。",
    )


def test_reminder(task: storage.Task, day: int, due: datetime) -> Text:
    """To the cadre, before a test."""
    return Text(
        f"核酸检测提醒：管控第{day}天",
        f"{task.summary}。{measure_of(task)}第{day}天应于{zh_time(due)}进行核酸检测，"
        "请提醒本人按时检测，出结果后在任务页登记。",
    )


def resident_test_reminder(task: storage.Task, day: int, due: datetime) -> Text:
    """To the person under the measure, before a test."""
    return Text(
        "核酸检测提醒",
        f"您正在{measure_of(task)}，今天是第{day}天，请于{zh_time(due)}按包户干部的安排"
        "进行核酸检测，检测前后请做好个人防护。",
    )


def test_missed(task: storage.Task, day: int, due: datetime, whom: str, not_taken: bool) -> Text:
    """To a level above the cadre, when a test has no result in time or was not taken."""
    what = "登记为未检测" if not_taken else "到时仍未登记检测结果"
    return Text(
        f"核酸检测未按时完成：管控第{day}天",
        f"{task.summary}。{measure_of(task)}第{day}天的核酸检测（应于{zh_time(due)}进行）"
        f"{what}，请{whom}督促尽快补检并登记结果。",
    )


def positive(task: storage.Task, at: datetime, whom: str) -> Text:
    """To the health centre and the county office, at once, on a positive test."""
    return Text(
        "核酸检测阳性：立即转运",
        f"{task.summary}。{zh_time(at)}登记核酸检测结果为阳性，已停止居家管控，转为待转运。"
        f"请{whom}立即安排闭环转运至定点医院或集中隔离点，并做好密接排查。",
    )


def verification_missed(task: storage.Task, due: datetime, whom: str) -> Text:
    """To a level above the cadre, when the visit/verification is not recorded by its time."""
    return Text(
        "入户核查逾期未完成",
        f"{task.summary}。包户干部已确认接收，应于{zh_time(due)}前完成入户核查，到时仍未登记。"
        f"请{whom}督促包户干部立即入户核查。",
    )


def high_risk(task: storage.Task, whom: str) -> Text:
    """To the township and county offices at once: a high-risk arrival, for their knowledge."""
    return Text(
        "高风险地区来返人员报告",
        f"{task.summary}。措施：{measure_of(task)}。按规定即时报{whom}掌握，"
        "包户干部正在核查处置，处置进展将在任务页更新。",
    )


def left_again(task: storage.Task, destination: str, at: datetime) -> Text:
    """To the county office: a person under follow-up left again, handed on to the destination."""
    return Text(
        f"管控对象再次外出：前往{destination}",
        f"{task.summary}。{zh_time(at)}登记已离开本地，前往{destination}。"
        "请县联防联控办向目的地通报，做好协查衔接。",
    )


def early_end_requested(task: storage.Task, reason: str, by: str) -> Text:
    """To the township office: an early end of a measure awaits approval."""
    end = f"期满时间为{zh_time(task.measure_ends_at)}，" if task.measure_ends_at else ""
    return Text(
        "提前解除管控待审批",
        f"{task.summary}。{measure_of(task)}{end}{by}申请提前解除，理由：{reason}。"
        "请镇联防联控办在任务页审批。",
    )


def measure_ending(task: storage.Task, ends_at: datetime) -> Text:
    """To the cadre, the day before the measure runs out."""
    return Text(
        f"管控即将期满：{_day(ends_at)}",
        f"{task.summary}。{measure_of(task)}将于{zh_time(ends_at)}期满，"
        "请安排好期满前的检测和健康评估，期满后在任务页解除管控。",
    )


def resident_measure_ending(task: storage.Task, ends_at: datetime) -> Text:
    """To the person, the day before the measure runs out."""
    return Text(
        "管控即将期满",
        f"您的{measure_of(task)}将于{zh_time(ends_at)}期满，期满前请继续按时打卡、配合检测，"
        "解除时包户干部会通知您。",
    )
