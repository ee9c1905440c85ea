"""Check-in flows: the measure's timers, taking a check-in, and telling people at once or late.

A fever or a listed symptom goes at once to the community and the township health centre, one
notice each (ids derive from the check-in and the group, and a replayed check-in is not taken
twice). A missed check-in goes to the cadre after the grace time, then to the liaison.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.timestamps import to_timestamp
from services.escalation import metrics, storage
from services.escalation.check_ins import CheckInRefused, CheckInRules
from services.escalation.domain import TaskState
from services.escalation.zero_reports import SHANGHAI

ChainLookup = Callable[[str], Awaitable[list[common_pb2.Responsible]]]

_BATCH = 100


def schedule(
    session: AsyncSession, task: storage.Task, rules: CheckInRules, start: datetime
) -> None:
    """Add the measure's check-in timers to the session."""
    for due in rules.slots(start, task.measure):  # type: ignore[arg-type]
        session.add(
            storage.CheckInSlot(
                slot_id=derived_id("check-in-slot", task.task_id, due.isoformat()),
                task_id=task.task_id,
                due_at=due,
                next_at=due + rules.grace,
            )
        )


async def cancel(session: AsyncSession, task_id: str) -> None:
    """The measure ended: no more check-ins are waited for."""
    for slot in await storage.open_slots(session, task_id):
        slot.next_at = None
        session.add(slot)


async def take(
    db: Database,
    producer: EventProducer,
    rules: CheckInRules,
    chain_of: ChainLookup,
    *,
    task_id: str,
    temperature: float | None,
    symptoms: list[str],
    channel: str,
    source_id: str,
    moment: datetime,
) -> tuple[storage.CheckIn, list[str]]:
    """Record a check-in and tell people at once when abnormal; the notification ids sent.

    `source_id` names the check-in at its source (the SMS message id, the page's submission),
    so a replay returns the stored check-in and sends nothing again. Raises CheckInRefused.
    """
    check_in_id = derived_id("check-in", task_id, channel, source_id)
    async with db.session() as session:
        task = await storage.get_task(session, task_id, for_update=True)
        if task is None:
            raise CheckInRefused(f"no task {task_id}")
        known = await session.get(storage.CheckIn, check_in_id)
        if known is not None:
            return known, []
        if task.state != TaskState.UNDER_CONTROL:
            raise CheckInRefused(f"no measure is running: the task is {task.state}")
        reason = rules.abnormal(temperature, symptoms)
        check_in = storage.CheckIn(
            check_in_id=check_in_id, task_id=task_id, temperature=temperature,
            symptoms="、".join(symptoms)[:200], abnormal=reason or "", channel=channel,
            received_at=moment,
        )  # fmt: skip
        session.add(check_in)
        for slot in await storage.open_slots(session, task_id):
            # The earliest check-in still awaited whose window has opened is now answered.
            if slot.due_at - rules.grace <= moment:
                slot.received, slot.next_at = True, None
                session.add(slot)
                break
        sent = []
        if reason is not None:
            sent = await _alert(producer, rules, await chain_of(task.node_id), task, check_in)
    return check_in, sent


async def _alert(
    producer: EventProducer,
    rules: CheckInRules,
    chain: list[common_pb2.Responsible],
    task: storage.Task,
    check_in: storage.CheckIn,
) -> list[str]:
    by_level = {r.level: r for r in chain}
    recipients = []
    community = by_level.get(common_pb2.CHAIN_LEVEL_COMMUNITY)
    if community is not None:
        recipients.append(community)
    township = by_level.get(common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE)
    centre = rules.health_centre(township.group_id) if township is not None else None
    # Without a configured health centre, the township office itself is told.
    if centre is not None or township is not None:
        recipients.append(centre or township)
    reason = f"管控期间健康异常：{check_in.abnormal}"
    sent = []
    for recipient in recipients:
        raised = events_pb2.EscalationRaised(
            escalation_id=derived_id("check-in-alert", check_in.check_in_id, recipient.group_id),
            task_id=task.task_id, level=recipient.level, reason=reason, grid_id=task.grid_id,
            recipient=recipient, raised_at=to_timestamp(check_in.received_at),
        )  # fmt: skip
        await producer.publish(
            topics.ESCALATIONS,
            Envelope(event_id=raised.escalation_id, key=task.grid_id, message=raised),
        )
        sent.append(
            await _notify(
                producer, task, recipient, reason, raised.escalation_id, check_in.received_at
            )
        )
        metrics.ESCALATIONS.labels(metrics.level_label(recipient.level), "check_in_abnormal").inc()
    return sent


async def fire_missed(
    db: Database,
    producer: EventProducer,
    chain_of: ChainLookup,
    rules: CheckInRules,
    moment: datetime,
) -> list[str]:
    """Tell the cadre, then the liaison, of check-ins not received in time; the notice ids."""
    sent: list[str] = []
    async with db.session() as session:
        for slot in await storage.due_slots(session, moment, _BATCH):
            task = await storage.get_task(session, slot.task_id)
            if task is None or task.state != TaskState.UNDER_CONTROL:
                slot.next_at = None
                session.add(slot)
                continue
            if slot.stage == 0:
                recipient = common_pb2.Responsible(
                    level=common_pb2.CHAIN_LEVEL_CADRE, group_id=task.assignee_group_id
                )
                slot.stage, slot.next_at = 1, slot.due_at + 2 * rules.grace
            else:
                liaison = [
                    r for r in await chain_of(task.node_id)
                    if r.level == common_pb2.CHAIN_LEVEL_LIAISON
                ]  # fmt: skip
                slot.stage, slot.next_at = 2, None
                session.add(slot)
                if not liaison:
                    continue
                recipient = liaison[0]
            session.add(slot)
            due = slot.due_at.astimezone(SHANGHAI).strftime("%m月%d日 %H:%M")
            key = derived_id("check-in-missed", slot.slot_id, str(recipient.level))
            sent.append(
                await _notify(producer, task, recipient, f"{due}的健康打卡未按时提交", key, moment)
            )
            metrics.ESCALATIONS.labels(
                metrics.level_label(recipient.level), "check_in_missed"
            ).inc()
    return sent


async def _notify(
    producer: EventProducer,
    task: storage.Task,
    recipient: common_pb2.Responsible,
    reason: str,
    key: str,
    moment: datetime,
) -> str:
    notice = events_pb2.Notification(
        notification_id=derived_id("notice", key, recipient.group_id),
        kind=events_pb2.NOTIFICATION_KIND_ESCALATION,
        recipient=recipient,
        title=reason,
        body=f"{task.summary}。{reason}，请立即处置。",
        task_id=task.task_id,
        report_id=task.report_id,
        link=task.link,
        created_at=to_timestamp(moment),
        report_accepted_at=to_timestamp(task.report_accepted_at),
    )
    await producer.publish(
        topics.NOTIFICATIONS,
        Envelope(event_id=notice.notification_id, key=recipient.group_id, message=notice),
    )
    return notice.notification_id
