"""The topics of the platform and their creation."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

REPORTS = "reports.v1"
TASKS = "tasks.v1"
ESCALATIONS = "escalations.v1"
NOTIFICATIONS = "notifications.v1"
DELIVERIES = "deliveries.v1"

ALL = (REPORTS, TASKS, ESCALATIONS, NOTIFICATIONS, DELIVERIES)


def dead_letter(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}.dlq"


async def ensure_topics(
    bootstrap: str, partitions: int, replication: int, topics: tuple[str, ...] = ALL
) -> None:
    """Create each topic and its dead-letter topic unless it exists."""
    wanted = [name for topic in topics for name in (topic, dead_letter(topic))]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=replication)
            for name in wanted
            if name not in existing
        ]
        if missing:
            # Another process may create them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
