"""The runner reports its lag per partition held, and drops the series when it leaves."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.bus.consumer import ConsumerRunner
from gridline.bus.envelope import Envelope
from gridline.bus.producer import BrokerUnavailable, EventProducer
from gridline.bus.topics import ensure_topics
from gridline.db import Database
from gridline.settings import Settings
from tests.bus.test_consumer_runner import db, task
from tests.helpers import eventually

__all__ = ["db"]


def lag(topic: str, group: str, partition: int) -> float | None:
    labels = {"topic": topic, "group": group, "partition": str(partition)}
    return REGISTRY.get_sample_value("gridline_consumer_lag_records", labels)


async def test_lag_counts_records_not_taken_and_goes_when_the_member_stops(
    settings: Settings, db: Database, producer: EventProducer, topic_name: str
) -> None:
    await ensure_topics(settings.kafka_bootstrap, 1, 1, (topic_name,))
    for i in range(5):
        await producer.publish(topic_name, Envelope(event_id=f"e{i}", key="k", message=task("t")))
    # While "the broker is down" the runner keeps seeking back to the first record.
    broker_down = asyncio.Event()
    broker_down.set()

    async def handle(_: Envelope, __: AsyncSession) -> None:
        if broker_down.is_set():
            raise BrokerUnavailable("test: no confirm")

    runner = ConsumerRunner(settings=settings, topic=topic_name, group="lag", handler=handle, db=db)
    running = asyncio.create_task(runner.run())
    try:

        async def behind_by_all() -> bool:
            return lag(topic_name, "lag", 0) == 5

        await eventually(behind_by_all, within=15)
        broker_down.clear()

        async def caught_up() -> bool:
            return lag(topic_name, "lag", 0) == 0

        await eventually(caught_up, within=15)
    finally:
        runner.stop()
        await asyncio.wait_for(running, 10)
    assert lag(topic_name, "lag", 0) is None
