"""Robot budgets across replicas and digests: nothing over the budget, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlmodel import select

from gridline.bus import topics
from gridline.bus.output import event_output
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker
from gridline.personal import Sealer
from gridline.settings import Settings
from services.notify import storage
from services.notify.budget import RobotBudget
from services.notify.consumers import Deliverer, RetryPolicy
from services.notify.digests import Digester
from services.notify.groups import seal_secret
from services.notify.routing import build_router
from tests.helpers import eventually
from tests.notify import vendors as v
from tests.notify.vendors import Vendors

BUDGET = 20  # WeCom: 20 messages a minute per robot


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path, vendors: Vendors) -> Settings:
    base = Settings(kafka_bootstrap=broker.bootstrap, kafka_idempotence=False, data_dir=tmp_path)
    sealer = Sealer(base.pii_key.get_secret_value())
    groups = tmp_path / "groups.yaml"
    key = seal_secret(sealer, v.WECOM_KEY)
    groups.write_text(f'groups:\n  g-busy: {{robot: {{kind: wecom, key: "{key}"}}}}\n')
    return base.model_copy(
        update={
            "notify_groups_file": groups,
            "notify_wecom_base_url": f"{vendors.url}/wecom",
            "notify_inbox_enabled": False,
            "notify_retry_initial_seconds": 0.05,
        }
    )


class Replica:
    """One notify replica's delivering parts: its own database, outbox, router and digester."""

    def __init__(self, deliverer: Deliverer, digester: Digester) -> None:
        self.deliverer = deliverer
        self.digester = digester


@pytest.fixture
async def replicas(
    settings: Settings, redis_client: aioredis.Redis
) -> AsyncIterator[list[Replica]]:
    await topics.ensure_topics(settings.kafka_bootstrap, 1, 1, (topics.DELIVERIES,))
    made: list[Replica] = []
    async with (
        Database(settings, "notify", storage.TABLES) as db_a,
        Database(settings, "notify", storage.TABLES) as db_b,
        event_output(settings, db_a),
        event_output(settings, db_b),
    ):
        routers = []
        for db in (db_a, db_b):
            router = build_router(settings)
            routers.append(router)
            deliverer = Deliverer(
                router, db, RetryPolicy.from_settings(settings), RobotBudget(redis_client)
            )
            made.append(Replica(deliverer, Digester(deliverer, db, tick_seconds=0.5)))
        async with made[0].digester, made[1].digester:
            yield made
        for router in routers:
            await router.close()


def notice(number: int, run: str) -> events_pb2.Notification:
    return events_pb2.Notification(
        notification_id=f"{run}-{number}",
        kind=events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
        recipient=common_pb2.Responsible(
            level=common_pb2.CHAIN_LEVEL_CADRE, group_id="g-busy", group_name="忙碌的群"
        ),
        title=f"核实任务 N{number:03d}",
        link=f"http://127.0.0.1:8003/tasks/{run}-{number}",
    )


def mentioned(vendors: Vendors) -> list[int]:
    """Every notification number in everything the robot accepted."""
    found: list[int] = []
    for request in vendors.of("wecom", ok=True):
        body = json.loads(request.raw)
        content = body.get("markdown", body.get("text", {})).get("content", "")
        found += [int(n) for n in re.findall(r"N(\d{3})", content)]
    return found


async def test_a_hundred_notices_in_a_minute_stay_in_budget_and_arrive_once(
    replicas: list[Replica], vendors: Vendors
) -> None:
    run = uuid.uuid4().hex[:8]
    # Two replicas share the work, as partitions would share it, each taking its batch at once.
    await asyncio.gather(
        *(
            replica.deliverer.deliver_all([notice(n, run) for n in range(100) if n % 2 == side])
            for side, replica in enumerate(replicas)
        )
    )

    async def all_arrived() -> bool:
        return sorted(set(mentioned(vendors))) == list(range(100))

    await eventually(all_arrived, within=120)
    assert sorted(mentioned(vendors)) == list(range(100))  # each exactly once
    # The robot never saw more than its budget in any minute, so never answered 45009.
    assert all(r.ok for r in vendors.of("wecom"))
    times = sorted(t for ts in vendors.sends.values() for t in ts)
    assert max(sum(1 for u in times if t <= u < t + 60) for t in times) <= BUDGET
    assert len(vendors.of("wecom")) <= BUDGET * 2


async def test_a_digest_that_the_robot_refuses_fails_and_dead_letters_each_entry(
    settings: Settings, redis_client: aioredis.Redis, vendors: Vendors
) -> None:
    await topics.ensure_topics(settings.kafka_bootstrap, 1, 1, (topics.DELIVERIES,))
    router = build_router(settings)
    run = uuid.uuid4().hex[:8]
    async with (
        Database(settings, "notify", storage.TABLES) as db,
        event_output(settings, db),
    ):
        # One send a second: the first goes alone, the other four wait for a digest.
        budget = RobotBudget(redis_client, {"wecom": ((1, 1.0),)})
        deliverer = Deliverer(router, db, RetryPolicy.from_settings(settings), budget)
        for n in range(5):
            await deliverer.deliver(notice(n, run))
        async with db.session() as session:
            waiting = (await session.exec(select(storage.DigestEntry))).all()
        assert len(waiting) == 4
        digester = Digester(deliverer, db)
        with vendors.failing("wecom", 200, {"errcode": 93000, "errmsg": "invalid webhook url"}):

            async def flushed() -> bool:
                return await digester.flush() == 1

            await eventually(flushed, within=10)
        async with db.session() as session:
            rows = [await storage.delivery(session, f"{run}-{n}", "wecom") for n in range(5)]
            assert (await session.exec(select(storage.DigestEntry))).all() == []
    await router.close()
    assert [row.outcome for row in rows if row] == [storage.DELIVERED] + [storage.FAILED] * 4
    assert all("93000" in row.error for row in rows[1:] if row)
