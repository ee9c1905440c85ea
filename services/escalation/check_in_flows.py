"""Check-in flows: the measure's timers, taking a check-in, and telling people at once or late.

A fever or a listed symptom goes at once to the community and the township health centre, one
notice each (ids derive from the check-in and the group, and a replayed check-in is not taken
twice). A missed check-in goes to the cadre after the grace time, then to the liaison. Each
notice carries its recipient's own task-page link (`gridline.links`); the health centre's only
shows the task.

An SMS reply names its task by the measure's check-in code: random, set when the measure starts
and cleared when it ends. A sender whose replies keep naming no task is refused for a while.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.notices import TaskRef, build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.links import PageLinks, Role, notice_link
from gridline.timestamps import to_timestamp, zh_time
from services.escalation import metrics, storage, townships
from services.escalation.chains import ChainLookup, resolve
from services.escalation.check_ins import (
    CheckInRefused,
    CheckInRules,
    new_check_in_code,
    parse_sms,
)
from services.escalation.domain import STATE_LABELS, UNDER_MEASURE

# Missed check-ins handled per transaction.
_BATCH = 500


async def schedule(
    session: AsyncSession, task: storage.Task, rules: CheckInRules, due: list[datetime]
) -> None:
    """Give the task a check-in code no running measure has, and add a check-in timer for
    each of the measure's check-in times (`measures.check_in_times` of the task's plan)."""
    # Scheduled as the measure starts, when the task holds its kind.
    if task.measure is None:
        raise ValueError(f"task {task.task_id} has started no measure")
    # A code already given comes about once in 10^8 starts with thousands of measures running;
    # the unique index refuses the rarer still race of two starts drawing the same one.
    code = new_check_in_code()
    while await storage.task_by_code(session, code):
        code = new_check_in_code()
    task.check_in_code = code
    for at in due:
        session.add(
            storage.CheckInSlot(
                slot_id=derived_id("check-in-slot", task.task_id, at.isoformat()),
                task_id=task.task_id,
                due_at=at,
                next_at=at + rules.grace,
            )
        )


async def cancel(session: AsyncSession, task: storage.Task) -> None:
    """The measure ended: no more check-ins are waited for, and its code names nothing."""
    task.check_in_code = None
    for slot in await storage.open_slots(session, task.task_id):
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
    links: PageLinks | None = None,
) -> tuple[storage.CheckIn, list[str]]:
    """Record a check-in and tell people at once when abnormal; the notification ids sent.

    `source_id` names the check-in at its source (the SMS message id, the page's submission),
    so a replay returns the stored check-in and sends nothing again. The notices carry links
    made with `links`. Raises CheckInRefused, in words the one checking in reads.
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
            raise CheckInRefused("没有找到这项任务，请联系包户干部")
        known = await session.get(storage.CheckIn, check_in_id)
        if known is not None:
            return known, []
        if task.state not in UNDER_MEASURE:
            state = STATE_LABELS.get(task.state, task.state)
            raise CheckInRefused(f"任务当前为“{state}”，不在管控期内，无需打卡")
        if reason is not None and task.node_id != chain_node:
            # Its node changed since the chain was read (placed, then put under a measure).
            raise CheckInRefused("任务信息刚有变动，请重新提交打卡")
        check_in = storage.CheckIn(
            check_in_id=check_in_id, task_id=task_id, temperature=temperature,
            symptoms="、".join(symptoms)[:200], abnormal=reason or "", channel=channel,
            received_at=moment,
        )  # fmt: skip
        session.add(check_in)
        opened = [
            slot
            for slot in await storage.open_slots(session, task_id)
            if slot.due_at - rules.grace <= moment
        ]
        if opened:
            # Of the awaited check-ins whose window has opened, the one nearest in time (the
            # earlier of two as near) is answered: with check-ins every two hours a check-in on
            # time answers its own, not one missed before it, which stays missed.
            slot = min(opened, key=lambda s: (abs(s.due_at - moment), s.due_at))
            slot.received, slot.next_at = True, None
            session.add(slot)
        sent = []
        if reason is not None:
            sent = _alert(session, rules, chain, task, check_in, links)
    return check_in, sent


async def take_sms(
    db: Database,
    rules: CheckInRules,
    chain_of: ChainLookup,
    *,
    text: str,
    message_id: str,
    sender: str,
    moment: datetime,
    links: PageLinks | None = None,
) -> tuple[storage.CheckIn, list[str]]:
    """Take an SMS reply `CODE 36.8 [symptoms]` as `take` does; the notification ids sent.

    The code names the task under a measure. `sender` is the number the reply came from, as the
    gateway gives it (kept only as a derived key): once its replies named no task
    `wrong_codes` times within the window, they are refused until those misses age out of it.
    Replies without a sender share one allowance. Raises CheckInRefused, in words the resident
    reads.
    """
    reply = parse_sms(text)
    sender_key = derived_id("sms-sender", sender)
    since = moment - rules.wrong_code_window
    async with db.session() as session:
        if await storage.code_misses(session, sender_key, since) >= rules.config.wrong_codes:
            minutes = round(rules.config.wrong_code_window_minutes)
            raise CheckInRefused(f"打卡码错误次数过多，请{minutes}分钟后再回复，或联系包户干部")
        found = await storage.task_by_code(session, reply.code)
        if not found:
            # Counted as the session commits, before the refusal below is raised.
            await storage.add_code_miss(session, sender_key, moment, since)
    if not found:
        raise CheckInRefused("打卡码不正确或管控已结束，请核对后重新回复；如有疑问请联系包户干部")
    return await take(
        db, rules, chain_of, task_id=found[0].task_id, temperature=reply.temperature,
        symptoms=reply.symptoms, channel="sms", source_id=message_id, moment=moment, links=links,
    )  # fmt: skip


def _alert(
    session: AsyncSession,
    rules: CheckInRules,
    chain: list[common_pb2.Responsible],
    task: storage.Task,
    check_in: storage.CheckIn,
    links: PageLinks | None,
) -> list[str]:
    by_level = {r.level: r for r in chain}
    recipients: list[tuple[common_pb2.Responsible, Role | None]] = []
    community = by_level.get(common_pb2.CHAIN_LEVEL_COMMUNITY)
    if community is not None:
        recipients.append((community, None))
    township = by_level.get(common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE)
    centre = rules.health_centre(township.group_id) if township is not None else None
    # Without a configured health centre, the township office itself is told.
    if centre is not None:
        recipients.append((centre, Role.HEALTH_CENTRE))
    elif township is not None:
        recipients.append((township, None))
    reason = f"管控期间健康异常：{check_in.abnormal}"
    sent = []
    for recipient, role in recipients:
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
            _notify(
                session,
                task,
                recipient,
                reason,
                raised.escalation_id,
                check_in.received_at,
                links,
                role,
            )
        )
        metrics.ESCALATIONS.labels(
            metrics.level_label(recipient.level), "check_in_abnormal", metrics.township_label(chain)
        ).inc()
    return sent


async def fire_missed(
    db: Database,
    chain_of: ChainLookup,
    rules: CheckInRules,
    moment: datetime,
    links: PageLinks | None = None,
) -> list[str]:
    """Tell the cadre, then the liaison, of a batch of check-ins not received in time; the
    notice ids (each notice with its recipient's link, made with `links`).

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
            if task is None or task.state not in UNDER_MEASURE:
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
            key = derived_id("check-in-missed", slot.slot_id, str(recipient.level))
            reason = f"{zh_time(slot.due_at)}的健康打卡未按时提交"
            sent.append(_notify(session, task, recipient, reason, key, moment, links))
            # The cadre is told without a chain: then the township the open-task gauge learnt
            # for the grid (the task is open, so it was counted).
            chain = chains.get(task.node_id)
            township = metrics.township_label(chain) if chain else townships.known(task.grid_id)
            metrics.ESCALATIONS.labels(
                metrics.level_label(recipient.level), "check_in_missed", township
            ).inc()
    return sent


def _notify(
    session: AsyncSession,
    task: storage.Task,
    recipient: common_pb2.Responsible,
    reason: str,
    key: str,
    moment: datetime,
    links: PageLinks | None,
    role: Role | None = None,
) -> str:
    link = notice_link(
        links, task.task_id, recipient, holder=task.assignee_group_id, at=moment, role=role
    )
    notice = build_notice(
        derived_id("notice", key, recipient.group_id),
        events_pb2.NOTIFICATION_KIND_ESCALATION,
        recipient,
        title=reason,
        body=f"{task.summary}。{reason}，请立即处置。",
        at=moment,
        about=TaskRef(task.task_id, task.report_id, link, task.report_accepted_at),
    )
    stage(session, topics.NOTIFICATIONS, notice_envelope(notice))
    return notice.notification_id
