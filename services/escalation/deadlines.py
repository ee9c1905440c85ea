"""The deadline loop: tasks not acknowledged in time go up the chain, step by step of the plan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.logging import get_logger
from gridline.timestamps import now
from gridline.workers import PeriodicWorker
from services.escalation import check_in_flows, metrics, replanning, storage
from services.escalation.check_ins import CheckInRules
from services.escalation.domain import (
    HIGH_RISK_REASON,
    OverdueTask,
    escalation_for,
    overdue_reason,
    recipients_for,
)
from services.escalation.policy import DeadlinePolicy

log = get_logger(__name__)

# The chain of a household, grid or community, bottom first (DirectoryClient.chain).
ChainLookup = Callable[[str], Awaitable[list[common_pb2.Responsible]]]
Clock = Callable[[], datetime]

_BATCH = 100


async def fire_due(
    db: Database,
    chain_of: ChainLookup,
    producer: EventProducer,
    policy: DeadlinePolicy,
    moment: datetime,
) -> list[str]:
    """Raise the due step of every task whose deadline passed by `moment`; returns the event ids.

    The due rows are locked and skipped by other replicas (PostgreSQL SKIP LOCKED; SQLite has one
    writer), so each step fires once. Events are published before the transaction commits, with
    ids derived from task, assignment and step, so a crash in between repeats the same ids and
    consumers drop the repeat.
    """
    fired: list[str] = []
    async with db.session() as session:
        for task in await storage.due_tasks(session, moment, _BATCH):
            plan = replanning.plan_of(policy, task)
            step = plan[task.step] if task.step < len(plan) else None
            if step is None:
                task.deadline_at = None
                session.add(task)
                continue
            chain = await chain_of(task.node_id)
            overdue = OverdueTask(
                task_id=task.task_id,
                report_id=task.report_id,
                grid_id=task.grid_id,
                level=task.assignee_level,
                summary=task.summary,
                link=task.link,
                report_accepted_at=task.report_accepted_at,
            )
            reason = HIGH_RISK_REASON if step.immediate else overdue_reason(task.assignee_level)
            round_key = f"{task.assigned_at.isoformat()}#{task.step}"
            for recipient in recipients_for(chain, step.levels, task.assignee_level):
                escalation, notice = escalation_for(
                    overdue, recipient, moment, reason=reason, round_key=round_key
                )
                await producer.publish(
                    topics.ESCALATIONS,
                    Envelope(
                        event_id=escalation.escalation_id, key=task.grid_id, message=escalation
                    ),
                )
                await producer.publish(
                    topics.NOTIFICATIONS,
                    Envelope(
                        event_id=notice.notification_id, key=recipient.group_id, message=notice
                    ),
                )
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
                ).inc()
                fired.append(escalation.escalation_id)
            task.step += 1
            task.deadline_at = replanning.due_at(plan, task.step, task.assigned_at)
            session.add(task)
    return fired


async def count_open_tasks(db: Database, moment: datetime) -> dict[tuple[int, str], int]:
    """Open tasks by level and age label, recorded on the OPEN_TASKS gauge and returned."""
    counts: dict[tuple[int, str], int] = {}
    async with db.session() as session:
        for level, assigned_at in await storage.open_task_ages(session):
            key = (level, metrics.age_bucket((moment - assigned_at).total_seconds() / 3600))
            counts[key] = counts.get(key, 0) + 1
    metrics.record_open_tasks(counts)
    return counts


class DeadlineWatcher(PeriodicWorker):
    """Looks for due deadlines (and missed check-ins) every `tick` seconds while it is open."""

    def __init__(
        self,
        db: Database,
        chain_of: ChainLookup,
        producer: EventProducer,
        policy: DeadlinePolicy,
        tick: float,
        clock: Clock = now,
        check_ins: CheckInRules | None = None,
    ) -> None:
        self._args = (db, chain_of, producer, policy)
        self._check_ins = check_ins
        self._clock = clock
        super().__init__(tick)

    name = "deadlines"

    async def run_pass(self) -> None:
        """Fire what is due, then missed check-ins, then refresh the open-task gauge."""
        # While passes raise something, more may be due: look again at once.
        while await fire_due(*self._args, self._clock()) and not self.stopping:
            pass
        if self._check_ins is not None:
            db, chain_of, producer, _ = self._args
            while await check_in_flows.fire_missed(
                db, producer, chain_of, self._check_ins, self._clock()
            ):
                pass
        await count_open_tasks(self._args[0], self._clock())
