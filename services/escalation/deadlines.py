"""The deadline loop: tasks not acknowledged in time go up the chain, step by step of the plan."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.envelope import Envelope, notice_envelope
from gridline.bus.outbox import stage
from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.links import PageLinks, notice_link
from gridline.logging import get_logger
from gridline.timestamps import now
from gridline.workers import PeriodicWorker
from services.escalation import check_in_flows, measure_flows, metrics, replanning, storage
from services.escalation.chains import (
    ChainLookup,
    described,
    for_one_pass,
    look_up,
    unknown_node,
    unreachable,
)
from services.escalation.check_ins import CheckInRules
from services.escalation.domain import (
    AWAITING_ACKNOWLEDGEMENT,
    HIGH_RISK_REASON,
    OverdueTask,
    escalation_for,
    overdue_reason,
    recipients_for,
)
from services.escalation.policy import DeadlinePolicy
from services.escalation.retries import retry_at as retry_at
from services.escalation.townships import Townships

log = get_logger(__name__)

Clock = Callable[[], datetime]

# Tasks fired per transaction.
_BATCH = 500


async def fire_due(
    db: Database,
    chain_of: ChainLookup,
    policy: DeadlinePolicy,
    moment: datetime,
    links: PageLinks | None = None,
) -> list[str]:
    """Raise the due step of a batch of tasks whose deadline passed by `moment`; the event ids.

    Three steps, so that no row lock is held while the Directory answers: read the due tasks
    (skipping those another replica is firing), look up the chains of their nodes with no
    transaction open, then lock the rows (PostgreSQL SKIP LOCKED; SQLite has one writer), fire
    each that is still due at the step read, and stage its events in that transaction. So each
    step fires once; event ids derive from task, assignment and step, so a replay of the same
    step repeats the same ids and consumers drop the repeat.

    A task whose step cannot be fired (its node unknown to the Directory, its lookup or its
    firing failed) is set aside: its deadline moves to a later try (`retry_at`), a WARNING
    names it and `gridline_escalation_deadlines_set_aside_total` counts it, and the tasks
    behind it fire all the same; a batch that only set tasks aside is followed by the next.
    A task whose Directory could not be reached stays due for the next pass. Each notice
    carries its recipient's own link, issued now (made with `links`).
    """
    while True:
        fired, set_aside = await _fire_batch(db, chain_of, policy, moment, links)
        if fired or not set_aside:
            return fired


async def _fire_batch(
    db: Database,
    chain_of: ChainLookup,
    policy: DeadlinePolicy,
    moment: datetime,
    links: PageLinks | None,
) -> tuple[list[str], int]:
    """Fire one batch of due tasks: the event ids, and how many tasks were set aside."""
    async with db.session() as session:
        due = await storage.due_tasks(session, moment, _BATCH)
    if not due:
        return [], 0
    found = await look_up(chain_of, {node_id for _, node_id, _ in due})
    steps = {task_id: step for task_id, _, step in due}
    fired: list[str] = []
    set_aside = 0
    async with db.session() as session:
        for task in await storage.lock_due_tasks(session, steps, moment):
            # Changed since it was read (fired by another replica): the next pass takes it.
            if task.step != steps[task.task_id]:
                continue
            chain = found.chains.get(task.node_id)
            if chain is None:
                error = found.failed.get(task.node_id)
                # Reassigned since it was read, or the Directory could not be reached just
                # now: the next pass asks for its node again.
                if error is None or unreachable(error):
                    continue
                reason = "node_unknown" if unknown_node(error) else "lookup_failed"
                _set_aside(session, task, policy, moment, reason, described(error))
                set_aside += 1
                continue
            try:
                fired += _fire(session, task, chain, policy, moment, links)
            except Exception as failure:
                # Nothing of the task was staged: `_fire` computes everything before it writes.
                _set_aside(session, task, policy, moment, "fire_failed", repr(failure))
                set_aside += 1
    return fired, set_aside


def _set_aside(
    session: AsyncSession,
    task: storage.Task,
    policy: DeadlinePolicy,
    moment: datetime,
    reason: str,
    error: str,
) -> None:
    """Move the task's deadline to a later try, so that it no longer holds up the others."""
    task.deadline_at = retry_at(_step_due_at(policy, task), moment)
    session.add(task)
    metrics.DEADLINES_SET_ASIDE.labels(reason).inc()
    log.warning(
        "deadline set aside",
        task_id=task.task_id,
        node_id=task.node_id,
        step=task.step,
        reason=reason,
        error=error,
        retry_at=task.deadline_at.isoformat(),
    )


def _step_due_at(policy: DeadlinePolicy, task: storage.Task) -> datetime | None:
    """When the task's next step fell due by its plan; None if its stored plan is unreadable."""
    try:
        return replanning.due_at(replanning.plan_of(policy, task), task.step, task.assigned_at)
    except (KeyError, TypeError, ValueError):
        return None


def _fire(
    session: AsyncSession,
    task: storage.Task,
    chain: list[common_pb2.Responsible],
    policy: DeadlinePolicy,
    moment: datetime,
    links: PageLinks | None,
) -> list[str]:
    """Raise the task's due step to its recipients and move it to its next step.

    Everything is computed before anything is staged or changed, so a step that cannot be
    computed leaves the transaction as it was.
    """
    plan = replanning.plan_of(policy, task)
    step = plan[task.step] if task.step < len(plan) else None
    if step is None:
        task.deadline_at = None
        session.add(task)
        return []
    overdue = OverdueTask(
        task_id=task.task_id,
        report_id=task.report_id,
        grid_id=task.grid_id,
        level=task.assignee_level,
        summary=task.summary,
        link="",
        report_accepted_at=task.report_accepted_at,
    )
    reason = HIGH_RISK_REASON if step.immediate else overdue_reason(task.assignee_level)
    round_key = f"{task.assigned_at.isoformat()}#{task.step}"
    raised = []
    for recipient in recipients_for(chain, step.levels, task.assignee_level):
        # A link of its own, from now: the task's first link may have expired days ago.
        link = notice_link(links, task.task_id, recipient, holder=task.assignee_group_id, at=moment)
        escalation, notice = escalation_for(
            replace(overdue, link=link),
            recipient,
            moment,
            reason=reason,
            round_key=round_key,
            # A low-risk case that is late may wait for an office's morning; nothing else may.
            deferrable=task.origin_risk == common_pb2.RISK_LEVEL_LOW and not step.immediate,
        )
        raised.append((recipient, escalation, notice))
    next_deadline = replanning.due_at(plan, task.step + 1, task.assigned_at)
    fired = []
    for recipient, escalation, notice in raised:
        stage(
            session,
            topics.ESCALATIONS,
            Envelope(event_id=escalation.escalation_id, key=task.grid_id, message=escalation),
        )
        stage(session, topics.NOTIFICATIONS, notice_envelope(notice))
        session.add(
            storage.Escalation(
                escalation_id=escalation.escalation_id,
                task_id=task.task_id,
                level=recipient.level,
                reason=reason,
                group_id=recipient.group_id,
                raised_at=moment,
            )
        )
        task.level = max(task.level, recipient.level)
        metrics.ESCALATIONS.labels(
            metrics.level_label(recipient.level),
            "high_risk" if step.immediate else "overdue",
            metrics.township_label(chain),
        ).inc()
        fired.append(escalation.escalation_id)
    task.step += 1
    task.deadline_at = next_deadline
    session.add(task)
    return fired


async def count_open_tasks(
    db: Database,
    moment: datetime,
    policy: DeadlinePolicy | None = None,
    townships: Townships | None = None,
) -> dict[tuple[int, str], int]:
    """Open tasks by level and age label, returned, and recorded on the open-task gauges with
    their townships (`unknown` without `townships`); with the `policy`, also the tasks still
    awaiting acknowledgement past their first deadline, by township."""
    counts: dict[tuple[int, str], int] = {}
    by_township: dict[tuple[int, str, str], int] = {}
    overdue: dict[str, int] = {}
    async with db.session() as session:
        tasks = await storage.open_task_ages(session)
        awaiting = (
            await storage.awaiting_acknowledgement(session, AWAITING_ACKNOWLEDGEMENT)
            if policy is not None
            else []
        )
    # Asked with no transaction open, as every Directory call of the watcher.
    names = await townships.of({grid_id for *_, grid_id in tasks}) if townships else {}
    for level, assigned_at, grid_id in tasks:
        age = metrics.age_bucket((moment - assigned_at).total_seconds() / 3600)
        counts[level, age] = counts.get((level, age), 0) + 1
        key = (level, age, names.get(grid_id, metrics.UNKNOWN_TOWNSHIP))
        by_township[key] = by_township.get(key, 0) + 1
    for task in awaiting:
        plan = replanning.plan_of(policy, task) if policy is not None else []
        deadline = replanning.first_deadline(plan, task.assigned_at)
        if deadline is not None and deadline <= moment:
            township = names.get(task.grid_id, metrics.UNKNOWN_TOWNSHIP)
            overdue[township] = overdue.get(township, 0) + 1
    metrics.record_open_tasks(by_township, overdue)
    return counts


# How often the open-task gauge is recounted (Prometheus scrapes every 15 s by default).
_GAUGE_SECONDS = 15.0


class DeadlineWatcher(PeriodicWorker):
    """Looks for due deadlines (and, with the check-in rules, missed check-ins and the
    measures' timers: `measure_flows`) every `tick` seconds while it is open; the notices carry
    links made with `links`."""

    def __init__(
        self,
        db: Database,
        chain_of: ChainLookup,
        policy: DeadlinePolicy,
        tick: float,
        clock: Clock = now,
        check_ins: CheckInRules | None = None,
        links: PageLinks | None = None,
    ) -> None:
        self._db, self._chain_of, self._policy = db, chain_of, policy
        self._check_ins = check_ins
        self._links = links
        self._clock = clock
        self._counted_at: float | None = None
        self._townships = Townships(chain_of)
        super().__init__(tick)

    name = "deadlines"

    async def run_pass(self) -> None:
        """Fire what is due, then missed check-ins, then refresh the open-task gauge."""
        # A node's chain is asked once per pass, however many of its tasks fall due.
        chain_of = for_one_pass(self._chain_of)
        # While passes raise something, more may be due: look again at once.
        while not self.stopping and await fire_due(
            self._db, chain_of, self._policy, self._clock(), self._links
        ):
            pass
        if self._check_ins is not None:
            while not self.stopping and await check_in_flows.fire_missed(
                self._db, chain_of, self._check_ins, self._clock(), self._links
            ):
                pass
            # The measures' own timers (reminders, tests, verification, the end, notices):
            # `fire_due` goes on, batch after batch, until nothing is left to fire.
            if not self.stopping:
                await measure_flows.fire_due(
                    self._db, chain_of, self._check_ins, self._clock(), self._links
                )
        # The gauge reads every open task: refreshed at a scrape's pace, not at every tick.
        at = time.monotonic()
        if self._counted_at is None or at - self._counted_at >= _GAUGE_SECONDS:
            await count_open_tasks(self._db, self._clock(), self._policy, self._townships)
            self._counted_at = at
