"""Reading back what escalation published, from the real broker."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from gridline.bus.envelope import Envelope, decode
from gridline.bus.outbox import Outbox


async def published(bootstrap: str, topic: str, *, after: Outbox | None) -> list[Envelope]:
    """Every record on `topic` so far, decoded, in offset order per partition.

    `after`: the outbox whose committed events must be on the broker first (None when what
    staged them has stopped, which drains its outbox).
    """
    if after is not None:
        await after.drained()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster's metadata
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Envelope] = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=2000)
                for record in batch.get(tp, []):
                    found.append(decode(record.key, record.value, list(record.headers)))
        return found
    finally:
        await consumer.stop()
