"""Measures carried out: their timers scheduled as a task moves, and fired as they fall due.

A task's follow-up timers (`measures.TimerKind`) are rows of `storage.MeasureTimer`, written
with the change that makes them (an acknowledgement, a measure started, a test recorded, an
outcome) and fired by the deadline watcher as the deadlines are (`deadlines.DeadlineWatcher`):
read the due timers (skipping rows another replica holds), look up the chains of their tasks'
nodes with no transaction open, then lock the timers still due and fire each in that
transaction. A timer fires once: it is cleared as it fires, and the ids of what it sends derive
from it, so a replay sends the same ids again and consumers drop the repeat. A timer whose
chain cannot be had (its node unknown to the Directory) is set aside for a later try, as a
deadline is (`retries.retry_at`); one whose Directory could not be reached stays due.

What a timer sends: reminders to the cadre and to the person (through the cadre's group of the
households in their care: the person's phone stays sealed with assignment) before each
check-in and test; escalations when the verification or a test is missed and when a test is
positive; notices, for information, of a high-risk arrival, a person who left again, an early
end to approve and a measure that ends tomorrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.enums import chain_level
from gridline.contracts.notices import build_notice
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.ids import derived_id
from gridline.links import ROLE_ZH, PageLinks, Role, notice_link
from gridline.logging import get_logger
from gridline.timestamps import SHANGHAI, to_timestamp
from services.escalation import check_in_flows, measure_notices, metrics, storage
from services.escalation.chains import (
    ChainLookup,
    described,
    look_up,
    unknown_node,
    unreachable,
)
from services.escalation.check_ins import CheckInRules
from services.escalation.domain import (
    UNDER_MEASURE,
    Measure,
    OverdueTask,
    TaskState,
    TestResult,
    recipients_for,
)
from services.escalation.measure_notices import Text
from services.escalation.measures import (
    FollowUp,
    TimerKind,
    Window,
    check_in_times,
    measure_timers,
    verify_due,
    window,
)
from services.escalation.retries import retry_at

log = get_logger(__name__)

# Timers fired per transaction.
_BATCH = 500

# Kinds that need the chain above the task (the cadre and the person are told without one).
_NEED_CHAIN = frozenset(
    {
        TimerKind.HIGH_RISK,
        TimerKind.VERIFY,
        TimerKind.TEST_MISSED,
        TimerKind.POSITIVE,
        TimerKind.LEFT,
        TimerKind.EARLY_END,
    }
)


def _row(
    task_id: str,
    kind: TimerKind,
    due_at: datetime,
    fire_at: datetime,
    *,
    test_day: int = 0,
    note: str = "",
    key: str = "",
) -> dict[str, Any]:
    return {
        "timer_id": derived_id("measure-timer", task_id, kind.value, due_at.isoformat(), key),
        "task_id": task_id,
        "kind": kind.value,
        "due_at": due_at,
        "test_day": test_day,
        "note": note[:500],
        "next_at": fire_at,
        "fired_at": None,
    }


def at_once(
    task_id: str,
    kind: TimerKind,
    moment: datetime,
    *,
    note: str = "",
    key: str = "",
    test_day: int = 0,
) -> dict[str, Any]:
    """A timer that fires at the next pass (a notice or escalation sent now, durably)."""
    return _row(task_id, kind, moment, moment, note=note, key=key, test_day=test_day)


def high_risk_timer(task_id: str, moment: datetime) -> dict[str, Any]:
    """The notice of a high-risk arrival to the offices: one per task, however often its risk
    is found high (assigned high, then raised: the same id)."""
    return _row(task_id, TimerKind.HIGH_RISK, moment, moment, key="once")


async def start(
    session: AsyncSession, task: storage.Task, rules: CheckInRules, moment: datetime
) -> Window:
    """The measure starts now: its window from the task's plan, its check-ins (`check_in_flows`)
    and its reminders, tests and end notice."""
    if task.measure is None:
        raise ValueError(f"task {task.task_id} has started no measure")
    measure = window(FollowUp.decode(task.follow_up), Measure(task.measure), moment)
    task.measure_started_at, task.measure_ends_at = moment, measure.ends_at
    await check_in_flows.schedule(session, task, rules, check_in_times(measure))
    await storage.add_timers(
        session,
        [
            _row(task.task_id, t.kind, t.due_at, t.fire_at, test_day=t.test_day)
            for t in measure_timers(measure, rules.timing)
        ],
    )
    return measure


async def stop(session: AsyncSession, task: storage.Task) -> None:
    """The person is no longer under the measure: its check-ins, reminders, tests and end
    notice are void (notices already decided, e.g. a positive test's, still go)."""
    await check_in_flows.cancel(session, task)
    for timer in await storage.pending_timers(session, task.task_id):
        if TimerKind(timer.kind).during_measure:
            timer.next_at = None
            session.add(timer)


async def acknowledged(session: AsyncSession, task: storage.Task, moment: datetime) -> None:
    """The visit/verification deadline starts to run: the plan's, or counted from now for a
    task that came from another holder."""
    due = verify_due(
        FollowUp.decode(task.follow_up), moment, handed_over=task.handed_over_at is not None
    )
    task.verify_by = due
    if due is not None:
        await storage.add_timers(
            session,
            [_row(task.task_id, TimerKind.VERIFY, due, due, key=moment.isoformat())],
        )


async def record_test(
    session: AsyncSession,
    task: storage.Task,
    result: TestResult,
    *,
    result_id: str,
    actor: str,
    channel: str,
    moment: datetime,
) -> storage.TestRecord:
    """Store a test result against the earliest planned test still open on or before today.

    A result not taken sends that test up at once; a positive one sends the health centre and
    the county office word at once (the caller moves the case to transfer and stops the
    measure). A result when no test is open is kept as an unplanned one.
    """
    pending = await storage.pending_timers(session, task.task_id)
    today = moment.astimezone(SHANGHAI).date()
    planned = [
        t
        for t in pending
        if t.kind == TimerKind.TEST_MISSED and t.due_at.astimezone(SHANGHAI).date() <= today
    ]
    test = planned[0] if planned else None
    day = test.test_day if test is not None else _day_of(task, moment)
    record = storage.TestRecord(
        result_id=result_id, task_id=task.task_id, test_day=day, result=result.value,
        actor=actor[:100], channel=channel, recorded_at=moment,
    )  # fmt: skip
    session.add(record)
    for timer in pending:
        if timer.kind == TimerKind.TEST_REMINDER and timer.test_day == day:
            timer.next_at = None  # answered before its reminder
            session.add(timer)
    timers = []
    if result is TestResult.NOT_TAKEN:
        if test is not None:
            test.next_at = moment
            session.add(test)
        else:
            timers.append(
                at_once(task.task_id, TimerKind.TEST_MISSED, moment, key=result_id, test_day=day)
            )
    elif test is not None:
        test.next_at = None
        session.add(test)
    if result is TestResult.POSITIVE:
        timers.append(at_once(task.task_id, TimerKind.POSITIVE, moment, key=result_id))
    await storage.add_timers(session, timers)
    return record


def _day_of(task: storage.Task, moment: datetime) -> int:
    if task.measure_started_at is None or task.measure is None:
        return 0
    measure = window(FollowUp.decode(task.follow_up), Measure(task.measure), moment)
    return max(measure.day_of(moment), 0)


async def fire_due(
    db: Database,
    chain_of: ChainLookup,
    rules: CheckInRules,
    moment: datetime,
    links: PageLinks | None = None,
) -> list[str]:
    """Fire the follow-up timers due by `moment`, batch after batch; the notification ids sent.

    Stops when a batch handled nothing: what is left due waits for a Directory that could not
    be reached, or for the replica that holds it.
    """
    sent: list[str] = []
    while True:
        fired, handled = await _fire_batch(db, chain_of, rules, moment, links)
        sent += fired
        if not handled:
            return sent


async def _fire_batch(
    db: Database,
    chain_of: ChainLookup,
    rules: CheckInRules,
    moment: datetime,
    links: PageLinks | None,
) -> tuple[list[str], int]:
    """One batch: the notification ids sent, and how many timers were fired or set aside."""
    async with db.session() as session:
        due = await storage.due_timers(session, moment, _BATCH)
    if not due:
        return [], 0
    found = await look_up(chain_of, {node_id for *_, node_id in due})
    nodes = {timer_id: node_id for timer_id, _, node_id in due}
    sent: list[str] = []
    handled = 0
    async with db.session() as session:
        timers = await storage.lock_due_timers(session, nodes, moment)
        tasks = await storage.tasks_by_id(session, {t.task_id for t in timers})
        for timer in timers:
            task = tasks.get(timer.task_id)
            if task is None or task.node_id != nodes[timer.timer_id]:
                continue  # placed elsewhere since it was read: the next pass asks again
            kind = TimerKind(timer.kind)
            chain = found.chains.get(task.node_id)
            if chain is None and kind in _NEED_CHAIN:
                error = found.failed.get(task.node_id)
                if error is None or unreachable(error):
                    continue
                reason = "node_unknown" if unknown_node(error) else "lookup_failed"
                later = retry_at(timer.next_at, moment)
                _set_aside(session, timer, later, reason, described(error))
                handled += 1
                continue
            try:
                out = await _outgoing(session, timer, task, chain or [], rules, moment, links)
            except Exception as failure:
                # Nothing is staged before `_outgoing` has computed everything.
                later = retry_at(timer.next_at, moment)
                _set_aside(session, timer, later, "fire_failed", repr(failure))
                handled += 1
                continue
            sent += _send(session, task, kind, out, chain or [], moment)
            timer.next_at, timer.fired_at = None, moment
            session.add(timer)
            handled += 1
    return sent, handled


def _set_aside(
    session: AsyncSession, timer: storage.MeasureTimer, later: datetime, reason: str, error: str
) -> None:
    """Try the timer again later, so that it holds up no other (counted as a deadline is)."""
    timer.next_at = later
    session.add(timer)
    metrics.DEADLINES_SET_ASIDE.labels(reason).inc()
    log.warning(
        "measure timer set aside",
        timer_id=timer.timer_id,
        task_id=timer.task_id,
        kind=timer.kind,
        reason=reason,
        error=error,
        retry_at=later.isoformat(),
    )


@dataclass(frozen=True)
class _Out:
    """One notice a timer sends, and the escalation it stands for when it is one."""

    notice: events_pb2.Notification
    reason: str = ""  # set for an escalation


def _cadre(task: storage.Task, chain: Sequence[common_pb2.Responsible]) -> common_pb2.Responsible:
    """The task's holder, named as the chain names their group when it does."""
    for r in chain:
        if r.group_id == task.assignee_group_id:
            return r
    level = chain_level(task.assignee_level)
    return common_pb2.Responsible(level=level, group_id=task.assignee_group_id)


def _whom(recipient: common_pb2.Responsible, role: Role | None) -> str:
    """How a notice addresses its recipient: the health centre as such, else by its level."""
    return ROLE_ZH[role] if role is not None else measure_notices.level_zh(recipient.level)


def _health_centre(
    rules: CheckInRules, chain: Sequence[common_pb2.Responsible]
) -> tuple[common_pb2.Responsible, Role | None] | None:
    """The township's health centre (its link only shows the task), else the township office."""
    township = next((r for r in chain if r.level == common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE), None)
    if township is None:
        return None
    centre = rules.health_centre(township.group_id)
    return (centre, Role.HEALTH_CENTRE) if centre is not None else (township, None)


async def _outgoing(
    session: AsyncSession,
    timer: storage.MeasureTimer,
    task: storage.Task,
    chain: list[common_pb2.Responsible],
    rules: CheckInRules,
    moment: datetime,
    links: PageLinks | None,
) -> list[_Out]:
    """What the timer sends now (nothing when what it waited for came, or is void)."""
    kind = TimerKind(timer.kind)
    follow_up = rules.config.follow_up
    cadre = _cadre(task, chain)

    def notice(
        recipient: common_pb2.Responsible,
        kind_: events_pb2.NotificationKind,
        text: Text,
        *,
        role: Role | None = None,
        resident: bool = False,
        reason: str = "",
    ) -> _Out:
        # The person gets no link: a task page acts for the cadre, not for them.
        link = (
            ""
            if resident
            else notice_link(
                links, task.task_id, recipient, holder=task.assignee_group_id, at=moment, role=role
            )
        )
        about = OverdueTask(
            task_id=task.task_id, report_id=task.report_id, grid_id=task.grid_id,
            level=task.assignee_level, summary=task.summary, link=link,
            report_accepted_at=task.report_accepted_at,
        )  # fmt: skip
        who = "resident" if resident else recipient.group_id
        return _Out(
            build_notice(
                derived_id("notice", timer.timer_id, who, str(recipient.level)),
                kind_,
                recipient,
                title=text.title,
                body=text.body,
                at=moment,
                about=about,
            ),
            reason=reason,
        )

    def reminders(
        cadre_text: Text, resident_text: Text, kind_: events_pb2.NotificationKind
    ) -> list[_Out]:
        return [
            notice(cadre, kind_, cadre_text),
            notice(
                cadre, events_pb2.NOTIFICATION_KIND_RESIDENT_REMINDER, resident_text, resident=True
            ),
        ]

    measuring = task.state in UNDER_MEASURE
    if kind is TimerKind.HIGH_RISK:
        return [
            notice(
                r,
                events_pb2.NOTIFICATION_KIND_REPORTED_UP,
                measure_notices.high_risk(task, _whom(r, None)),
            )
            for r in recipients_for(chain, rules.levels(follow_up.high_risk), task.assignee_level)
        ]
    if kind is TimerKind.VERIFY:
        if task.state != TaskState.ACKNOWLEDGED or task.verify_by != timer.due_at:
            return []
        levels = rules.levels(follow_up.verification_missed)
        return [
            notice(
                r, events_pb2.NOTIFICATION_KIND_ESCALATION,
                measure_notices.verification_missed(task, timer.due_at, _whom(r, None)),
                reason="入户核查逾期未完成",
            )
            for r in recipients_for(chain, levels, task.assignee_level)
        ]  # fmt: skip
    if kind is TimerKind.CHECK_IN_REMINDER:
        if not measuring:
            return []
        return reminders(
            measure_notices.check_in_reminder(task, timer.due_at),
            measure_notices.resident_check_in_reminder(task, timer.due_at),
            events_pb2.NOTIFICATION_KIND_REMINDER,
        )
    if kind is TimerKind.TEST_REMINDER:
        if not measuring:
            return []
        return reminders(
            measure_notices.test_reminder(task, timer.test_day, timer.due_at),
            measure_notices.resident_test_reminder(task, timer.test_day, timer.due_at),
            events_pb2.NOTIFICATION_KIND_REMINDER,
        )
    if kind is TimerKind.END_NOTICE:
        if not measuring:
            return []
        return reminders(
            measure_notices.measure_ending(task, timer.due_at),
            measure_notices.resident_measure_ending(task, timer.due_at),
            events_pb2.NOTIFICATION_KIND_MEASURE_ENDING,
        )
    if kind is TimerKind.TEST_MISSED:
        results = [
            r.result for r in await storage.test_records_of(session, task.task_id)
            if r.test_day == timer.test_day
        ]  # fmt: skip
        done = any(r != TestResult.NOT_TAKEN for r in results)
        if not measuring or done:
            return []
        not_taken = TestResult.NOT_TAKEN in results
        reason = f"管控第{timer.test_day}天核酸检测未完成"
        recipients: list[tuple[common_pb2.Responsible, Role | None]] = [
            (r, None)
            for r in recipients_for(chain, rules.levels(follow_up.test_missed), task.assignee_level)
        ]
        centre = _health_centre(rules, chain)
        if centre is not None and centre[0].group_id not in {r.group_id for r, _ in recipients}:
            recipients.append(centre)
        return [
            notice(
                r, events_pb2.NOTIFICATION_KIND_ESCALATION,
                measure_notices.test_missed(
                    task, timer.test_day, timer.due_at, _whom(r, role), not_taken
                ),
                role=role, reason=reason,
            )
            for r, role in recipients
        ]  # fmt: skip
    if kind is TimerKind.POSITIVE:
        county = [r for r in chain if r.level == common_pb2.CHAIN_LEVEL_COUNTY_OFFICE]
        centre = _health_centre(rules, chain)
        targets: list[tuple[common_pb2.Responsible, Role | None]] = [
            *([centre] if centre is not None else []),
            *[(r, None) for r in county],
        ]
        return [
            notice(
                r, events_pb2.NOTIFICATION_KIND_ESCALATION,
                measure_notices.positive(task, timer.due_at, _whom(r, role)),
                role=role, reason="核酸检测阳性，立即转运",
            )
            for r, role in targets
        ]  # fmt: skip
    if kind is TimerKind.LEFT:
        return [
            notice(
                r, events_pb2.NOTIFICATION_KIND_REPORTED_UP,
                measure_notices.left_again(task, timer.note, timer.due_at),
            )
            for r in chain if r.level == common_pb2.CHAIN_LEVEL_COUNTY_OFFICE
        ]  # fmt: skip
    if kind is TimerKind.EARLY_END:
        if task.state != TaskState.END_REQUESTED:
            return []
        by, _, reason = timer.note.partition("\n")
        return [
            notice(
                r, events_pb2.NOTIFICATION_KIND_APPROVAL_REQUESTED,
                measure_notices.early_end_requested(task, reason, by),
            )
            for r in chain if r.level == common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE
        ]  # fmt: skip
    raise ValueError(f"unknown timer kind {kind}")


def _send(
    session: AsyncSession,
    task: storage.Task,
    kind: TimerKind,
    out: list[_Out],
    chain: list[common_pb2.Responsible],
    moment: datetime,
) -> list[str]:
    """Stage the notices, and each escalation's event and row; the notification ids."""
    sent = []
    for item in out:
        recipient = item.notice.recipient
        if item.reason:
            raised = events_pb2.EscalationRaised(
                escalation_id=derived_id("escalation", item.notice.notification_id),
                task_id=task.task_id, level=recipient.level, reason=item.reason,
                grid_id=task.grid_id, recipient=recipient, raised_at=to_timestamp(moment),
            )  # fmt: skip
            stage(
                session,
                topics.ESCALATIONS,
                Envelope(event_id=raised.escalation_id, key=task.grid_id, message=raised),
            )
            session.add(
                storage.Escalation(
                    escalation_id=raised.escalation_id, task_id=task.task_id,
                    level=recipient.level, reason=item.reason[:200],
                    group_id=recipient.group_id, raised_at=moment,
                )
            )  # fmt: skip
            task.level = max(task.level, recipient.level)
            session.add(task)
            metrics.ESCALATIONS.labels(
                metrics.level_label(recipient.level), kind.value, metrics.township_label(chain)
            ).inc()
        stage(session, topics.NOTIFICATIONS, notice_envelope(item.notice))
        sent.append(item.notice.notification_id)
    return sent
