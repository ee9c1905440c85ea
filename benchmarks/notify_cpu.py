"""CPU per notification of notify's delivery on the inbox channel, outbox publishing included.

    .venv/bin/python benchmarks/notify_cpu.py [--notifications 2000] [--batch 500]

Feeds the notifications to the Deliverer in batches, as the consumer runner hands them over, on
a real SQLite database with its outbox (relaying to an embedded broker) and Redis, and prints
this process's CPU time (`time.process_time()`) per notification until the outbox is drained.
Redis: GRIDLINE_TEST_REDIS_URL, else an embedded Valkey. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from gridline.bus import topics
from gridline.bus.output import event_output
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker, EmbeddedValkey
from gridline.settings import Settings
from gridline.timestamps import now, to_timestamp
from services.notify import storage
from services.notify.budget import RobotBudget
from services.notify.consumers import Deliverer, RetryPolicy
from services.notify.routing import build_router


async def measure(bootstrap: str, redis_url: str, data_dir: Path, count: int, batch: int) -> None:
    """Deliver `count` notifications in batches of `batch` and print the CPU they took."""
    settings = Settings(
        kafka_bootstrap=bootstrap,
        kafka_idempotence=False,
        data_dir=data_dir,
        notify_inbox_enabled=True,
    )
    await topics.ensure_topics(bootstrap, 1, 1, (topics.NOTIFICATIONS, topics.DELIVERIES))
    run = uuid.uuid4().hex[:8]
    notices = [
        events_pb2.Notification(
            notification_id=f"{run}-{n}",
            kind=events_pb2.NOTIFICATION_KIND_TASK_ASSIGNED,
            recipient=common_pb2.Responsible(
                level=common_pb2.CHAIN_LEVEL_CADRE, group_id=f"g-{n % 50}", group_name="群"
            ),
            title=f"任务 {n}",
            body="请核实",
            report_id=f"r-{run}-{n}",
            report_accepted_at=to_timestamp(now()),
        )
        for n in range(count)
    ]
    router = build_router(settings)
    client = aioredis.from_url(redis_url)
    try:
        async with (
            Database(settings, "notify", storage.TABLES) as db,
            event_output(settings, db) as outbox,
        ):
            deliverer = Deliverer(
                router,
                db,
                RetryPolicy.from_settings(settings),
                RobotBudget(client),
                settings.notify_concurrency,
            )
            cpu, wall = time.process_time(), time.perf_counter()
            for start in range(0, count, batch):
                await deliverer.deliver_all(notices[start : start + batch])
            await outbox.drained()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await router.close()
        await client.aclose()
    sys.stdout.write(
        f"{count} notifications in batches of {batch}: "
        f"CPU {cpu / count * 1000:.3f} ms each, wall {wall:.2f} s ({count / wall:.0f}/s)\n"
    )


def main() -> None:
    """Parse the arguments, start the broker (and Valkey if needed) and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    broker = EmbeddedBroker()
    broker.start()
    valkey = None
    redis_url = os.environ.get("GRIDLINE_TEST_REDIS_URL", "")
    if not redis_url:
        valkey = EmbeddedValkey()
        valkey.start()
        redis_url = valkey.url
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            asyncio.run(
                measure(broker.bootstrap, redis_url, Path(data_dir), args.notifications, args.batch)
            )
    finally:
        if valkey is not None:
            valkey.stop()
        broker.stop()


if __name__ == "__main__":
    main()
