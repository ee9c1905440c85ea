"""Delivery through the router on the real broker and database: retries, dead letters, markers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from gridline.bus import topics
from gridline.bus.envelope import Envelope, decode
from gridline.bus.outbox import Outbox
from gridline.bus.output import event_output
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.timestamps import now
from services.notify import storage
from services.notify.budget import RobotBudget
from services.notify.consumers import Deliverer, Outcome, RetryPolicy, Settled
from services.notify.groups import seal_secret
from services.notify.routing import Router, build_router
from tests.conftest import POSTGRES_URL
from tests.helpers import eventually
from tests.notify import samples
from tests.notify import vendors as v
from tests.notify.vendors import Vendors


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, broker: EmbeddedBroker, tmp_path: Path, vendors: Vendors
) -> Settings:
    database_url = ""
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("GRIDLINE_TEST_POSTGRES_URL is not set")
        database_url = request.getfixturevalue("postgres_database")
    base = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        data_dir=tmp_path,
        database_url=database_url,
    )
    sealer = Sealer(base.pii_key.get_secret_value())
    groups = tmp_path / "groups.yaml"
    groups.write_text(
        f"""
groups:
  g-wecom: {{robot: {{kind: wecom, key: "{seal_secret(sealer, v.WECOM_KEY)}"}}}}
  g-broken: {{robot: {{kind: wecom, key: "{seal_secret(sealer, "revoked-key")}"}}, sms: true}}
  g-office:
    robot: {{kind: wecom, key: "{seal_secret(sealer, v.WECOM_KEY)}"}}
    sms: true
    sms_phone: "{seal_secret(sealer, "13700001234")}"
sms:
  provider: gateway
  url: {vendors.url}/gateway/send
  token: "{seal_secret(sealer, v.GATEWAY_TOKEN)}"
offices: {{4: g-office}}
""",
        encoding="utf-8",
    )
    return base.model_copy(
        update={
            "notify_groups_file": groups,
            "notify_wecom_base_url": f"{vendors.url}/wecom",
            "notify_retry_initial_seconds": 0.05,
            "notify_retry_max_seconds": 0.2,
            "notify_max_attempts": 8,
        }
    )


Parts = tuple[Deliverer, Database, Router, Outbox]


@pytest.fixture
async def parts(settings: Settings, redis_client: aioredis.Redis) -> AsyncIterator[Parts]:
    await topics.ensure_topics(
        settings.kafka_bootstrap, 1, 1, (topics.NOTIFICATIONS, topics.DELIVERIES)
    )
    router = build_router(settings)
    async with (
        Database(settings, "notify", storage.TABLES) as db,
        event_output(settings, db) as outbox,
    ):
        retry = RetryPolicy.from_settings(settings)
        budget = RobotBudget(redis_client)
        deliverer = Deliverer(router, db, retry, budget, settings.notify_concurrency)
        yield deliverer, db, router, outbox
    await router.close()


def notice(
    group: str, *, level: common_pb2.ChainLevel = common_pb2.CHAIN_LEVEL_CADRE, prefix: str = ""
) -> events_pb2.Notification:
    """A task notice to `group` with a fresh id."""
    return events_pb2.Notification(
        notification_id=f"{prefix}{uuid.uuid4().hex}",
        kind=events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
        recipient=common_pb2.Responsible(
            level=level, group_id=group, group_name="三合小区", phone=samples.CADRE_PHONE
        ),
        title="返兰人员核实",
        body=f"身份证{samples.RESIDENT_ID}",
        link="http://127.0.0.1:8003/tasks/t-1",
    )


async def read(
    bootstrap: str, topic: str, want: int, keep: Callable[[Envelope], bool]
) -> list[Envelope]:
    """The first `want` records on `topic` that `keep` picks, within a bounded wait."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Envelope] = []
    try:
        async with asyncio.timeout(20):
            while len(found) < want:
                batch = await consumer.getmany(timeout_ms=200)
                for rs in batch.values():
                    found += [
                        e for e in (decode(r.key, r.value, list(r.headers)) for r in rs) if keep(e)
                    ]
    finally:
        await consumer.stop()
    return found


async def delivery_rows(db: Database, nid: str) -> dict[str, storage.Delivery]:
    """A notification's delivery rows by channel."""
    async with db.session() as session:
        return {row.channel: row for row in await storage.deliveries_of(session, nid)}


async def test_a_robot_answering_5xx_then_recovering_gets_every_message(
    parts: Parts, vendors: Vendors
) -> None:
    deliverer, db, _, _ = parts
    notices = [notice("g-wecom") for _ in range(3)]
    vendors.script("wecom", 503, {"errmsg": "service unavailable"}, times=4)
    for n in notices:
        await deliverer.deliver(n)
    accepted = vendors.of("wecom", ok=True)
    assert len(accepted) == 3
    assert len(vendors.of("wecom", ok=False)) == 4
    first = await delivery_rows(db, notices[0].notification_id)
    assert first["wecom"].outcome == storage.DELIVERED
    assert first["wecom"].attempts == 5
    assert first["inbox"].outcome == storage.DELIVERED
    async with db.session() as session:
        attempts = await storage.attempts_of(session, notices[0].notification_id)
    assert [a.ok for a in attempts if a.channel == "wecom"] == [False] * 4 + [True]


async def test_a_wrong_key_dead_letters_and_tells_the_office_once(
    parts: Parts, vendors: Vendors, settings: Settings
) -> None:
    deliverer, db, _, outbox = parts
    prefix = uuid.uuid4().hex[:8]
    notices = [
        notice("g-broken", level=common_pb2.CHAIN_LEVEL_COMMUNITY, prefix=prefix) for _ in range(3)
    ]
    for n in notices:
        await deliverer.deliver(n)
    refused = vendors.of("wecom", ok=False)
    assert len(refused) == 3  # a permanent failure is not retried
    assert all(r.answer["errcode"] == 93000 for r in refused)
    rows = await delivery_rows(db, notices[0].notification_id)
    assert rows["wecom"].outcome == storage.FAILED
    assert rows["sms-gateway"].outcome == storage.DELIVERED
    await outbox.drained()
    dead = await read(
        settings.kafka_bootstrap,
        topics.dead_letter(topics.NOTIFICATIONS),
        3,
        lambda e: e.key == "g-broken" and e.message.notification_id.startswith(prefix),
    )
    assert {e.headers["dlq-channel"] for e in dead} == {"wecom"}
    assert "93000" in dead[0].headers["dlq-error"]
    broken = await read(
        settings.kafka_bootstrap,
        topics.NOTIFICATIONS,
        3,
        lambda e: (
            e.message.kind == events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN
            and "g-broken" not in e.key
            and e.message.title.startswith("三合小区")
        ),
    )
    assert len({e.event_id for e in broken}) == 1  # one notice; repeats share its id
    # The vendor's error code stays with operations (the dead letter), not in the office's text.
    assert "93000" not in broken[0].message.body + broken[0].message.title
    # The office hears it by SMS, not through a robot; delivering it twice sends it once.
    before = len(vendors.of("wecom"))
    sms_before = len(vendors.of("gateway"))
    await deliverer.deliver(broken[0].message)
    await deliverer.deliver(broken[0].message)
    assert len(vendors.of("wecom")) == before
    assert len(vendors.of("gateway")) == sms_before + 1


async def test_a_crash_mid_call_never_sends_twice(parts: Parts, vendors: Vendors) -> None:
    deliverer, db, _, _ = parts
    n = notice("g-wecom")
    # What a SIGKILL between the vendor call and its outcome leaves: `sending` rows.
    async with db.session() as session:
        for channel in ("wecom", "inbox"):
            session.add(
                storage.Delivery(
                    notification_id=n.notification_id,
                    channel=channel,
                    group_id="g-wecom",
                    outcome=storage.SENDING,
                    attempts=0,
                    finished_at=now(),
                )
            )
    await deliverer.deliver(n)
    await deliverer.deliver(n)
    rows = await delivery_rows(db, n.notification_id)
    assert rows["wecom"].outcome == storage.UNKNOWN  # a robot cannot tell a resend: not resent
    assert vendors.of("wecom") == []
    assert rows["inbox"].outcome == storage.DELIVERED  # the inbox can: sent once


async def test_retries_running_out_fail_the_delivery_into_the_dead_letters(
    parts: Parts, vendors: Vendors, settings: Settings
) -> None:
    deliverer, db, _, outbox = parts
    n = notice("g-wecom")
    with vendors.failing("wecom", 502, {}):
        await deliverer.deliver(n)
    assert len(vendors.of("wecom")) == settings.notify_max_attempts
    rows = await delivery_rows(db, n.notification_id)
    assert rows["wecom"].outcome == storage.FAILED
    assert rows["wecom"].attempts == settings.notify_max_attempts
    await outbox.drained()
    [dead] = await read(
        settings.kafka_bootstrap,
        topics.dead_letter(topics.NOTIFICATIONS),
        1,
        lambda e: e.message.notification_id == n.notification_id,
    )
    assert "502" in dead.headers["dlq-error"]


async def test_an_idempotent_channel_writes_its_row_with_its_outcome(
    parts: Parts, vendors: Vendors, settings: Settings, redis_client: aioredis.Redis
) -> None:
    _, db, _, _ = parts
    router = build_router(
        settings.model_copy(update={"notify_webhook_url": f"{vendors.url}/hooks/{{group_id}}"})
    )
    # Long enough a pause before the retry to look at the rows while it waits.
    retry = RetryPolicy(attempts=3, initial=1.0, maximum=1.0)
    deliverer = Deliverer(router, db, retry, RobotBudget(redis_client))
    try:
        n = notice("g-wecom")
        vendors.script("hooks", 503, {"error": "busy"}, times=1)
        vendors.delay = 0.3
        sending = asyncio.create_task(deliverer.deliver(n))

        async def calling() -> bool:
            return vendors.in_flight.get("hooks", 0) > 0

        # The first call is out: the webhook has no row yet (a crash now resends it).
        await eventually(calling, within=10)
        assert "webhook" not in await delivery_rows(db, n.notification_id)

        async def recorded() -> bool:
            return "webhook" in await delivery_rows(db, n.notification_id)

        # The failed try is recorded with a `sending` row while the retry waits.
        await eventually(recorded, within=10)
        rows = await delivery_rows(db, n.notification_id)
        assert rows["webhook"].outcome == storage.SENDING
        async with db.session() as session:
            tried = await storage.attempts_of(session, n.notification_id)
        assert [(a.number, a.ok) for a in tried if a.channel == "webhook"] == [(1, False)]

        await sending
        rows = await delivery_rows(db, n.notification_id)
        assert (rows["webhook"].outcome, rows["webhook"].attempts) == (storage.DELIVERED, 2)
        assert rows["webhook"].group_id == "g-wecom"
        # The inbox's first try went through: its row is inserted with the outcome.
        assert (rows["inbox"].outcome, rows["inbox"].attempts) == (storage.DELIVERED, 1)
        assert rows["inbox"].group_id == "g-wecom"
        async with db.session() as session:
            tried = await storage.attempts_of(session, n.notification_id)
        assert [(a.number, a.ok) for a in tried if a.channel == "webhook"] == [
            (1, False),
            (2, True),
        ]
        assert len(vendors.of("hooks", ok=True)) == 1
    finally:
        await router.close()


async def test_a_second_writer_of_the_same_delivery_changes_nothing(parts: Parts) -> None:
    """Two replicas making the same delivery after a rebalance both write it: the second write
    keeps the first's outcome and attempts, and fails nothing (its batch would roll back)."""
    deliverer, db, _, _ = parts
    n = notice("g-wecom")
    await deliverer.deliver(n)
    before = await delivery_rows(db, n.notification_id)
    async with db.session() as session:
        tried = await storage.attempts_of(session, n.notification_id)
    again = [
        Settled(n, channel, Outcome(storage.FAILED, 1, "重复", permanent=False), now(), "重复")
        for channel in before
    ]
    async with db.session() as session:
        await deliverer.write(session, again)
    after = await delivery_rows(db, n.notification_id)
    assert {c: (r.outcome, r.attempts, r.error) for c, r in after.items()} == {
        c: (r.outcome, r.attempts, r.error) for c, r in before.items()
    }
    async with db.session() as session:
        assert await storage.attempts_of(session, n.notification_id) == tried
