"""Escalation's fixtures: settings on the real broker, its database with its outbox, a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridline.bus.outbox import Outbox
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker
from gridline.ids import new_id
from gridline.settings import Settings
from services.escalation import storage
from services.escalation.domain import TaskState
from services.escalation.measures import FollowUp
from services.escalation.policy import DeadlinePolicy

START = datetime(2026, 1, 20, 1, 0, tzinfo=UTC)

CHAIN = [
    common_pb2.Responsible(level=level, group_id=f"group-{level}")
    for level in (
        common_pb2.CHAIN_LEVEL_CADRE,
        common_pb2.CHAIN_LEVEL_LIAISON,
        common_pb2.CHAIN_LEVEL_COMMUNITY,
        common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
        common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
    )
]


async def static_chain(_node_id: str) -> list[common_pb2.Responsible]:
    """Every household under the same five levels."""
    return CHAIN


@dataclass
class Clock:
    """An injectable clock the test moves by hand."""

    moment: datetime = START

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> datetime:
        """Move on by `delta` and return the new time."""
        self.moment += delta
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap=broker.bootstrap, kafka_idempotence=False, data_dir=tmp_path)


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    async with EventProducer(settings) as events:
        yield events


@pytest.fixture
async def stored(
    settings: Settings, producer: EventProducer
) -> AsyncIterator[tuple[Database, Outbox]]:
    """Escalation's database and the outbox that publishes what its transactions stage."""
    async with (
        Database(settings, "escalation", storage.TABLES) as database,
        Outbox(database, producer, settings) as outbox,
    ):
        yield database, outbox


@pytest.fixture
def db(stored: tuple[Database, Outbox]) -> Database:
    return stored[0]


@pytest.fixture
def outbox(stored: tuple[Database, Outbox]) -> Outbox:
    return stored[1]


def new_task(
    policy: DeadlinePolicy,
    assigned_at: datetime,
    *,
    origin_risk: int = common_pb2.RISK_LEVEL_MEDIUM,
    triage: bool = False,
    task_id: str | None = None,
    follow_up: FollowUp | None = None,
) -> storage.Task:
    """A task as the tasks consumer stores it, assigned to a cadre at `assigned_at`, with the
    follow-up plan given (none: as a task stored before plans were carried)."""
    task_id = task_id or new_id()
    level = common_pb2.CHAIN_LEVEL_COMMUNITY if triage else common_pb2.CHAIN_LEVEL_CADRE
    return storage.Task(
        task_id=task_id,
        report_id=f"report-{task_id}",
        node_id="household-1",
        grid_id="grid-1",
        triage=triage,
        state=TaskState.TRIAGE if triage else TaskState.ASSIGNED,
        level=level,
        assignee_group_id=f"group-{level}",
        assignee_level=level,
        origin_risk=origin_risk,
        summary="王* **************1234 自北京返回",
        report_accepted_at=assigned_at,
        created_at=assigned_at,
        assigned_at=assigned_at,
        deadline_at=policy.deadline(origin_risk, 0, assigned_at),
        follow_up=follow_up.encode() if follow_up is not None else None,
    )
