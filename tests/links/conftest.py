"""Links that mean one person: escalation's database (migrated) with its outbox on the real broker,
its task page over ASGI, a grid whose chain names its people, and links made as services make
them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from gridline import problems
from gridline.bus import topics
from gridline.bus.outbox import Outbox
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker
from gridline.ids import new_id
from gridline.links import PageLinks
from gridline.settings import Settings
from services.escalation import page, storage
from services.escalation.check_ins import CheckInConfig, CheckInRules, HealthCentre
from services.escalation.domain import Action, Measure, TaskState
from services.escalation.flows import Change, change_task
from services.escalation.policy import DeadlinePolicy, every_level_after
from tests.escalation.records import published
from tests.helpers import database_settings

POLICY = every_level_after(timedelta(minutes=30))
RULES = CheckInRules(
    CheckInConfig(health_centres={"g-town": HealthCentre(group_id="g-health", group_name="卫生院")})
)
LINKS = PageLinks("http://gridline.test", b"test-task-link-key", timedelta(hours=72))

CADRE = common_pb2.Responsible(
    level=common_pb2.CHAIN_LEVEL_CADRE, person_id="p-zhang", person_name="张伟",
    group_id="g-cadre", group_name="张伟包户群",
)  # fmt: skip
LIAISON = common_pb2.Responsible(
    level=common_pb2.CHAIN_LEVEL_LIAISON, person_id="p-li", person_name="李娜",
    group_id="g-liaison", group_name="第三网格联络群",
)  # fmt: skip
COMMUNITY = common_pb2.Responsible(
    level=common_pb2.CHAIN_LEVEL_COMMUNITY, group_id="g-community", group_name="东湾社区"
)
TOWNSHIP = common_pb2.Responsible(
    level=common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE, group_id="g-town", group_name="石洞镇防控办"
)
COUNTY = common_pb2.Responsible(
    level=common_pb2.CHAIN_LEVEL_COUNTY_OFFICE, group_id="g-county", group_name="皋兰县防控办"
)
CHAIN = [CADRE, LIAISON, COMMUNITY, TOWNSHIP, COUNTY]
LEADER = common_pb2.Responsible(
    level=common_pb2.CHAIN_LEVEL_CADRE, person_id="p-wang", person_name="王芳",
    group_id="g-leader", group_name="联户长王芳",
)  # fmt: skip


async def chain_of(_node_id: str) -> list[common_pb2.Responsible]:
    """Every household under the same five levels, each naming its people."""
    return CHAIN


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """On SQLite, and on PostgreSQL when the suite is given one."""
    on_sqlite = Settings(
        kafka_bootstrap=broker.bootstrap, kafka_idempotence=False, data_dir=tmp_path
    )
    return database_settings(request, on_sqlite)


@pytest.fixture
async def stored(settings: Settings) -> AsyncIterator[tuple[Database, Outbox]]:
    """Escalation's database, upgraded by its revisions, and the outbox that publishes."""
    async with (
        EventProducer(settings) as producer,
        Database(settings, "escalation", storage.TABLES, storage.MIGRATIONS) as database,
        Outbox(database, producer, settings) as outbox,
    ):
        yield database, outbox


@pytest.fixture
def db(stored: tuple[Database, Outbox]) -> Database:
    return stored[0]


@pytest.fixture
def outbox(stored: tuple[Database, Outbox]) -> Outbox:
    return stored[1]


@pytest.fixture
def app(db: Database) -> FastAPI:
    """Escalation's task page over the database, with the grid's chain and the links' key."""
    served = FastAPI()
    problems.install(served)  # errors answered as the services answer them
    served.include_router(page.router)
    served.state.db, served.state.policy, served.state.links = db, POLICY, LINKS
    served.state.check_ins, served.state.chain_of = RULES, chain_of
    return served


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The task page over ASGI."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gridline.test"
    ) as http:
        yield http


def path_of(link: str) -> str:
    """The page's path and query of a link, for the ASGI client."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def action_path(link: str, action: str) -> str:
    """Where the page's form posts `action` through the link."""
    parts = urlsplit(link)
    return f"{parts.path}/{action}?{parts.query}"


def query_of(link: str) -> dict[str, str]:
    """A link's query, by name."""
    return dict(parse_qsl(urlsplit(link).query))


async def a_task(db: Database, at: datetime, policy: DeadlinePolicy = POLICY) -> storage.Task:
    """A task as the tasks consumer stores it, held by the cadre's group since `at`."""
    task_id = new_id()
    task = storage.Task(
        task_id=task_id, report_id=f"report-{task_id}", node_id="household-1", grid_id="grid-1",
        triage=False, state=TaskState.ASSIGNED, level=CADRE.level,
        assignee_group_id=CADRE.group_id, assignee_level=CADRE.level,
        origin_risk=common_pb2.RISK_LEVEL_MEDIUM,
        summary="王*（身份证1**************4）自北京（中风险地区）来，住东湾社区3号楼2单元201",
        report_accepted_at=at, created_at=at, assigned_at=at,
        deadline_at=policy.deadline(common_pb2.RISK_LEVEL_MEDIUM, 0, at),
    )  # fmt: skip
    async with db.session() as session:
        session.add(task)
    return task


async def under_quarantine(db: Database, at: datetime) -> storage.Task:
    """A task acknowledged, visited and put under 14 days of home quarantine at `at`."""
    task = await a_task(db, at)
    for change in (
        Change(Action.ACKNOWLEDGE, "包户干部", "http"),
        Change(Action.RECORD_VISIT, "包户干部", "http"),
        Change(Action.START_MEASURE, "包户干部", "http", measure=Measure.QUARANTINE),
    ):
        task, _ = await change_task(db, POLICY, task.task_id, change, lambda: at, RULES)
    return task


async def notices_of(
    settings: Settings, outbox: Outbox, task_id: str
) -> list[events_pb2.Notification]:
    """Every notice published about the task, in order."""
    return [
        e.message
        for e in await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == task_id
    ]
