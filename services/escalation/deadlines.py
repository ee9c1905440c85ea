"""The deadline loop: tasks not acknowledged in time go one level up the chain."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.logging import get_logger
from gridline.timestamps import now
from services.escalation import metrics, storage
from services.escalation.domain import OverdueTask, escalation_for, next_level

log = get_logger(__name__)

_BATCH = 100


async def fire_due(
    db: Database,
    directory: DirectoryClient,
    producer: EventProducer,
    ack_deadline: timedelta,
    moment: datetime,
) -> int:
    """Escalate every task whose deadline passed by `moment`; returns how many went up.

    Events are published before the transaction commits, with ids derived from task and level,
    so a crash in between repeats the same events and consumers drop the repeat.
    """
    fired = 0
    async with db.session() as session:
        for task in await storage.due_tasks(session, moment, _BATCH):
            chain = await directory.chain(task.node_id)
            step = next_level(chain, task.level)
            if step is None:
                task.deadline_at = None
                continue
            recipient, more_above = step
            overdue = OverdueTask(
                task_id=task.task_id,
                report_id=task.report_id,
                grid_id=task.grid_id,
                level=task.level,
                summary=task.summary,
                link=task.link,
                report_accepted_at=task.report_accepted_at,
            )
            escalation, notice = escalation_for(overdue, recipient, moment)
            await producer.publish(
                topics.ESCALATIONS,
                Envelope(event_id=escalation.escalation_id, key=task.grid_id, message=escalation),
            )
            await producer.publish(
                topics.NOTIFICATIONS,
                Envelope(event_id=notice.notification_id, key=recipient.group_id, message=notice),
            )
            session.add(
                storage.Escalation(
                    escalation_id=escalation.escalation_id,
                    task_id=task.task_id,
                    level=recipient.level,
                    reason=escalation.reason,
                    group_id=recipient.group_id,
                    raised_at=moment,
                )
            )
            task.level = recipient.level
            task.deadline_at = moment + ack_deadline if more_above else None
            session.add(task)
            metrics.ESCALATIONS.labels(str(recipient.level)).inc()
            fired += 1
    return fired


class DeadlineWatcher:
    """Looks for due deadlines every `tick` seconds while its context is open."""

    def __init__(
        self,
        db: Database,
        directory: DirectoryClient,
        producer: EventProducer,
        ack_deadline: timedelta,
        tick: float,
    ) -> None:
        self._args = (db, directory, producer, ack_deadline)
        self._tick = tick
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DeadlineWatcher:
        self._task = asyncio.create_task(self._run(), name="deadlines")
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def alive(self) -> bool:
        """Readiness: the loop is running."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await fire_due(*self._args, now())
            except BrokerUnavailable as exc:
                log.warning("broker unavailable, deadlines wait", error=str(exc))
            except Exception:
                log.exception("deadline pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._tick)
