"""Notify sends only links to the configured task pages: a notice with any other link is not
delivered and is dead-lettered with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.context import Context
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.envelope import Envelope, PermanentError
from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.bus.outbox import OUTBOX_TABLES, Outbox
from gridline.bus.producer import EventProducer
from gridline.bus.topics import ensure_topics
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.notify.consumers import Settled, notification_batch_handler
from services.notify.link_origin import TaskPageOrigin
from tests.helpers import eventually

BASE = "https://gridline.county.example.org"
PAGE = f"{BASE}/t/task-1?e=1767225600&s=abc"


@pytest.mark.parametrize(
    "link",
    [
        PAGE,
        "",  # a notice without a link (a digest, a broken channel)
        "HTTPS://Gridline.County.Example.ORG:443/t/task-1",
        f"{BASE}/t/task-1#top",
    ],
)
def test_task_pages_of_the_origin_pass(link: str) -> None:
    assert TaskPageOrigin(BASE).refusal(link) is None


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("https://evil.example/t/task-1", "https://evil.example:443/t/task-1 is not under"),
        ("http://gridline.county.example.org/t/task-1", "http://gridline.county.example.org:80"),
        ("https://gridline.county.example.org:8443/t/x", ":8443/t/x is not under"),
        (f"{BASE}/v1/tasks/task-1", "/v1/tasks/task-1 is not under the task pages"),
        (f"{BASE}/t/../v1/tasks/task-1", "climbs out of the task pages"),
        (f"{BASE}/t/%2E%2E/v1/tasks", "climbs out of the task pages"),
        ("https://gridline.county.example.org@evil.example/t/x", "carries a user name"),
        (f"{BASE}/t/x\nSet-Cookie: a", "spaces or control characters"),
        ("https://gridline.county.example.org:port/t/x", "the link is no URL"),
        ("javascript:alert(1)//t/", "is not under the task pages"),
    ],
)
def test_other_links_are_refused_with_a_reason(link: str, reason: str) -> None:
    refusal = TaskPageOrigin(BASE).refusal(link)
    assert refusal is not None and reason in refusal


def test_a_base_with_a_path_keeps_links_under_it() -> None:
    origin = TaskPageOrigin("https://portal.example.org/gridline/")
    assert origin.refusal("https://portal.example.org/gridline/t/x") is None
    refusal = origin.refusal("https://portal.example.org/t/x")
    assert refusal is not None and "https://portal.example.org/gridline/t/" in refusal


def test_a_base_that_would_be_refused_refuses_its_own_links() -> None:
    base = "https://clerk@gridline.county.example.org"
    refusal = TaskPageOrigin(base).refusal(f"{base}/t/task-1")
    assert refusal is not None and "carries a user name" in refusal


@given(st.lists(st.sampled_from([*"aZ09_-.~=&%+?#/@: \\", "%2e", "%2E%2e", ".."])).map("".join))
def test_the_quick_pass_lets_through_only_what_the_whole_check_does(tail: str) -> None:
    origin = TaskPageOrigin(BASE)
    for link in (f"{BASE}/t/{tail}", f"{BASE}/t/task-1?{tail}", f"{BASE}/t{tail}"):
        assert origin.refusal(link) == origin._checked(link)


def _notice(number: int, link: str) -> events_pb2.Notification:
    return events_pb2.Notification(
        notification_id=f"n-{number}",
        kind=events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
        recipient=common_pb2.Responsible(
            level=common_pb2.CHAIN_LEVEL_CADRE, group_id="g-1", group_name="群"
        ),
        title=f"任务 {number}",
        link=link,
    )


class _Recording:
    """Stands in for the Deliverer: keeps what it is asked to deliver."""

    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def send_all(
        self,
        notices: Sequence[events_pb2.Notification],
        traces: Mapping[str, Context] | None = None,
    ) -> list[Settled]:
        self.delivered += [notice.notification_id for notice in notices]
        return []

    async def settle(self, settled: Sequence[Settled]) -> None:
        assert not settled

    async def write(self, session: AsyncSession, settled: Sequence[Settled]) -> None:
        assert not settled


async def test_the_others_are_delivered_then_the_foreign_link_is_refused() -> None:
    deliverer = _Recording()
    handle = notification_batch_handler(deliverer, TaskPageOrigin(BASE))  # type: ignore[arg-type]
    batch = [
        Envelope(event_id="e1", key="g-1", message=_notice(1, PAGE)),
        Envelope(event_id="e2", key="g-1", message=_notice(2, "https://evil.example/t/1")),
        Envelope(event_id="e3", key="g-1", message=_notice(3, "")),
    ]
    with pytest.raises(PermanentError) as refused:
        await handle(batch)
    assert deliverer.delivered == ["n-1", "n-3"]
    assert str(refused.value) == (
        "link refused, not delivered: notification n-2: https://evil.example:443/t/1 is not "
        f"under the task pages {BASE}/t/"
    )


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        data_dir=tmp_path,
        public_base_url=BASE,
        consumer_retry_backoff_seconds=0.01,
        consumer_session_timeout_ms=3000,
        consumer_rebalance_timeout_ms=2000,
    )


@pytest.fixture
async def stored(settings: Settings) -> AsyncIterator[tuple[Database, EventProducer]]:
    async with (
        EventProducer(settings) as producer,
        Database(settings, "notify-links", [PROCESSED_EVENT_TABLE, *OUTBOX_TABLES]) as db,
        Outbox(db, producer, settings),
    ):
        yield db, producer


async def test_the_consumer_dead_letters_a_foreign_link_with_the_reason(
    settings: Settings, stored: tuple[Database, EventProducer], topic_name: str
) -> None:
    db, producer = stored
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    for number, link in ((1, PAGE), (2, "https://evil.example/t/1"), (3, f"{BASE}/t/3")):
        notice = _notice(number, link)
        await producer.publish(topic_name, Envelope(event_id=f"e{number}", key="g", message=notice))
    deliverer: Any = _Recording()
    runner = ConsumerRunner(
        settings=settings,
        topic=topic_name,
        group="notify-links",
        db=db,
        batch_handler=notification_batch_handler(deliverer, TaskPageOrigin(BASE)),
    )
    letters: list[dict[str, bytes]] = []
    consumer = AIOKafkaConsumer(
        topics.dead_letter(topic_name),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    running = asyncio.create_task(runner.run())
    try:

        async def dead_lettered() -> bool:
            batch = await consumer.getmany(timeout_ms=100)
            letters.extend(dict(r.headers) for rs in batch.values() for r in rs)
            return bool(letters)

        await eventually(dead_lettered)
    finally:
        runner.stop()
        await asyncio.wait_for(running, 10)
        await consumer.stop()
    [letter] = letters
    assert letter["event-id"] == b"e2"
    assert letter["dlq-attempts"] == b"1"
    # The reason, with the path's task id redacted as every dead-letter header is.
    assert letter["dlq-error"] == (
        b"PermanentError: link refused, not delivered: notification n-2: "
        b"https://evil.example:443/t/REDACTED is not under the task pages " + f"{BASE}/t/".encode()
    )
    # Applied again one by one, the others are given again: the Deliverer's delivery rows
    # make that a no-op (tests/notify); the refused one never reached it.
    assert set(deliverer.delivered) == {"n-1", "n-3"}
