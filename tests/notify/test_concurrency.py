"""A batch goes out at once to different recipients, in order to each, within the bound."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gridline.bus.output import event_output
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.notify import storage
from services.notify.budget import RobotBudget
from services.notify.consumers import Deliverer, RetryPolicy
from services.notify.routing import Router, build_router
from tests.conftest import POSTGRES_URL
from tests.notify.vendors import Vendors

HOLD = 0.5  # seconds the loopback webhook holds each request


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, broker: EmbeddedBroker, tmp_path: Path, vendors: Vendors
) -> Settings:
    """The generic webhook only, so that every delivery is one held request."""
    database_url = ""
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("GRIDLINE_TEST_POSTGRES_URL is not set")
        database_url = request.getfixturevalue("postgres_database")
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        data_dir=tmp_path,
        database_url=database_url,
        notify_inbox_enabled=False,
        notify_webhook_url=f"{vendors.url}/hooks/{{group_id}}",
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with (
        Database(settings, "notify", storage.TABLES) as database,
        event_output(settings, database),
    ):
        yield database


@pytest.fixture
async def deliverer_of(
    redis_client: aioredis.Redis, db: Database
) -> AsyncIterator[Callable[[Settings], Deliverer]]:
    """Makes a Deliverer on the test's database; its channels are closed at the end."""
    routers: list[Router] = []

    def make(settings: Settings) -> Deliverer:
        routers.append(build_router(settings))
        return Deliverer(
            routers[-1],
            db,
            RetryPolicy.from_settings(settings),
            RobotBudget(redis_client),
            settings.notify_concurrency,
        )

    yield make
    for router in routers:
        await router.close()


def notice(run: str, group: str, number: int) -> events_pb2.Notification:
    return events_pb2.Notification(
        notification_id=f"{run}-{number}",
        kind=events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
        recipient=common_pb2.Responsible(
            level=common_pb2.CHAIN_LEVEL_CADRE, group_id=group, group_name="群"
        ),
        title=f"任务 {number}",
    )


async def test_recipients_are_served_at_once_and_each_in_order(
    settings: Settings,
    deliverer_of: Callable[[Settings], Deliverer],
    db: Database,
    vendors: Vendors,
) -> None:
    deliverer = deliverer_of(settings)
    run = uuid.uuid4().hex[:8]
    spread = [notice(run, f"g-{n}", n) for n in range(10)]
    queue = [notice(run, "g-same", n) for n in range(10, 13)]
    # One recipient's notices between the others', as a partition's batch would hold them.
    batch = [*spread[:4], queue[0], *spread[4:7], queue[1], *spread[7:], queue[2]]
    vendors.delay = HOLD
    await deliverer.deliver_all(batch)
    # Each request is held a while: ten recipients at once and one of the same recipient's
    # three (the others wait their turn) were in flight together.
    assert vendors.peak_in_flight["hooks"] == 11
    keys = [r.headers["idempotency-key"] for r in vendors.of("hooks")]
    assert sorted(keys) == sorted(n.notification_id for n in batch)
    same = [r.headers["idempotency-key"] for r in vendors.of("hooks") if r.path == "/g-same"]
    assert same == [n.notification_id for n in queue]
    async with db.session() as session:
        for n in batch:
            [row] = await storage.deliveries_of(session, n.notification_id)
            assert (row.outcome, row.attempts) == (storage.DELIVERED, 1)
    # The same batch again (a replay) finds every delivery settled and sends nothing.
    await deliverer.deliver_all(batch)
    assert len(vendors.of("hooks")) == len(batch)


async def test_calls_in_flight_stay_within_the_bound(
    settings: Settings, deliverer_of: Callable[[Settings], Deliverer], vendors: Vendors
) -> None:
    deliverer = deliverer_of(settings.model_copy(update={"notify_concurrency": 3}))
    run = uuid.uuid4().hex[:8]
    vendors.delay = 0.2
    await deliverer.deliver_all([notice(run, f"g-{n}", n) for n in range(9)])
    assert len(vendors.of("hooks", ok=True)) == 9
    assert vendors.peak_in_flight["hooks"] == 3


async def test_a_delivery_waiting_to_retry_holds_up_no_other(
    settings: Settings,
    deliverer_of: Callable[[Settings], Deliverer],
    db: Database,
    vendors: Vendors,
) -> None:
    deliverer = deliverer_of(settings.model_copy(update={"notify_retry_initial_seconds": 0.3}))
    run = uuid.uuid4().hex[:8]
    batch = [notice(run, f"g-{n}", n) for n in range(10)]
    vendors.script("hooks", 503, {"error": "busy"}, times=2)
    await deliverer.deliver_all(batch)
    received = vendors.of("hooks")
    failed = {r.path for r in received if not r.ok}
    assert len(failed) == 2
    # The eight others went through while the two waited for their retry.
    assert [r.path in failed for r in received if r.ok] == [False] * 8 + [True] * 2
    async with db.session() as session:
        for n in batch:
            [(row, attempts)] = await storage.deliveries_with_attempts(session, n.notification_id)
            retried = f"/{n.recipient.group_id}" in failed
            assert row.outcome == storage.DELIVERED
            assert [a.ok for a in attempts] == ([False, True] if retried else [True])
