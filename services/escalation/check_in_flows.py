"""Check-in flows: the measure's timers, taking a check-in, and telling people at once or late.

A fever or a listed symptom goes at once to the community and the township health centre, one
notice each (ids derive from the check-in and the group, and a replayed check-in is not taken
twice). A missed check-in goes to the cadre after the grace time, then to the liaison.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.timestamps import to_timestamp
from services.escalation import metrics, storage
from services.escalation.chains import ChainLookup, resolve
from services.escalation.check_ins import CheckInRefused, CheckInRules
from services.escalation.domain import Measure, TaskState
from services.escalation.zero_reports import SHANGHAI

# Missed check-ins handled per transaction.
_BATCH = 500


def schedule(
    session: AsyncSession, task: storage.Task, rules: CheckInRules, start: datetime
) -> None:
    """Add the measure's check-in timers to the session."""
    # Scheduled as the measure starts, when the task holds its kind.
    if task.measure is None:
        raise ValueError(f"task {task.task_id} has started no measure")
    for due in rules.slots(start, Measure(task.measure)):
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
    reason = rules.abnormal(temperature, symptoms)
    chain: list[common_pb2.Responsible] = []
    chain_node: str | None = None
    if reason is not None:
        # The chain is asked before the task is locked. A task under a measure keeps its node
        # (it is placed elsewhere only before), so the chain read here is the one to tell.
        async with db.session() as session:
            current = await storage.get_task(session, task_id)
            taken = await session.get(storage.CheckIn, check_in_id) is not None
        if current is not None and not taken:
            chain_node, chain = current.node_id, await chain_of(current.node_id)
    async with db.session() as session:
        task = await storage.get_task(session, task_id, for_update=True)
        if task is None:
            raise CheckInRefused(f"no task {task_id}")
        known = await session.get(storage.CheckIn, check_in_id)
        if known is not None:
            return known, []
        if task.state != TaskState.UNDER_CONTROL:
            raise CheckInRefused(f"no measure is running: the task is {task.state}")
        if reason is not None and task.node_id != chain_node:
            # Its node changed since the chain was read (placed, then put under a measure).
            raise CheckInRefused("the task changed as the check-in came; send it again")
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
            sent = _alert(session, rules, chain, task, check_in)
    return check_in, sent


def _alert(
    session: AsyncSession,
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
    told = centre if centre is not None else township
    if told is not None:
        recipients.append(told)
    reason = f"管控期间健康异常：{check_in.abnormal}"
    sent = []
    for recipient in recipients:
        raised = events_pb2.EscalationRaised(
            escalation_id=derived_id("check-in-alert", check_in.check_in_id, recipient.group_id),
            task_id=task.task_id, level=recipient.level, reason=reason, grid_id=task.grid_id,
            recipient=recipient, raised_at=to_timestamp(check_in.received_at),
        )  # fmt: skip
        stage(
            session,
            topics.ESCALATIONS,
            Envelope(event_id=raised.escalation_id, key=task.grid_id, message=raised),
        )
        sent.append(
            _notify(session, task, recipient, reason, raised.escalation_id, check_in.received_at)
        )
        metrics.ESCALATIONS.labels(metrics.level_label(recipient.level), "check_in_abnormal").inc()
    return sent


async def fire_missed(
    db: Database,
    chain_of: ChainLookup,
    rules: CheckInRules,
    moment: datetime,
) -> list[str]:
    """Tell the cadre, then the liaison, of a batch of check-ins not received in time; the
    notice ids.

    As `deadlines.fire_due`: read the due slots (skipping those another replica holds), look up
    the chains the liaison's step needs with no transaction open, then lock the slots, handle
    each still at the stage read and stage its notice in that transaction.
    """
    async with db.session() as session:
        due = await storage.due_slots(session, moment, _BATCH)
        liaison_due = await storage.tasks_by_id(
            session, {task_id for _, task_id, stage in due if stage > 0}
        )
    if not due:
        return []
    chains = await resolve(chain_of, {task.node_id for task in liaison_due.values()})
    stages = {slot_id: stage for slot_id, _, stage in due}
    sent: list[str] = []
    async with db.session() as session:
        slots = await storage.lock_due_slots(session, stages, moment)
        tasks = await storage.tasks_by_id(session, {slot.task_id for slot in slots})
        for slot in slots:
            if slot.stage != stages[slot.slot_id]:
                continue  # moved on since it was read: the next pass takes it as it is
            task = tasks.get(slot.task_id)
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
                if task.node_id not in chains:
                    continue  # placed elsewhere since it was read: the next pass asks again
                liaison = [
                    r for r in chains[task.node_id] if r.level == common_pb2.CHAIN_LEVEL_LIAISON
                ]
                slot.stage, slot.next_at = 2, None
                session.add(slot)
                if not liaison:
                    continue
                recipient = liaison[0]
            session.add(slot)
            due_at = slot.due_at.astimezone(SHANGHAI).strftime("%m月%d日 %H:%M")
            key = derived_id("check-in-missed", slot.slot_id, str(recipient.level))
            sent.append(
                _notify(session, task, recipient, f"{due_at}的健康打卡未按时提交", key, moment)
            )
            metrics.ESCALATIONS.labels(
                metrics.level_label(recipient.level), "check_in_missed"
            ).inc()
    return sent


def _notify(
    session: AsyncSession,
    task: storage.Task,
    recipient: common_pb2.Responsible,
    reason: str,
    key: str,
    moment: datetime,
) -> str:
    notice = build_notice(
        derived_id("notice", key, recipient.group_id),
        events_pb2.NOTIFICATION_KIND_ESCALATION,
        recipient,
        title=reason,
        body=f"{task.summary}。{reason}，请立即处置。",
        at=moment,
        about=task,
    )
    stage(session, topics.NOTIFICATIONS, notice_envelope(notice))
    return notice.notification_id
