"""Producing events with `acks=all`, answering only once the broker has them."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gridline.bus.envelope import Envelope
from gridline.bus.security import kafka_security
from gridline.settings import Settings
from gridline.tracing import producer_span

_STARTUP_SECONDS = 60
_MURMUR_SEED = 0x9747B28C
_MURMUR_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


# One record as the broker takes it: topic, key, value and headers.
RawRecord = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]


class BrokerUnavailable(Exception):
    """The broker did not confirm a record in time; the caller must not claim it was taken."""


class EventProducer:
    """A started aiokafka producer that sends envelopes and waits for the broker's confirm."""

    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.kafka_confirm_timeout_seconds
        timeout_ms = int(self._timeout * 1000)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=settings.kafka_idempotence,
            request_timeout_ms=timeout_ms,
            linger_ms=settings.kafka_linger_ms,
            max_batch_size=settings.kafka_max_batch_bytes,
            partitioner=partition_for,
            **kafka_security(settings),
        )

    async def __aenter__(self) -> EventProducer:
        """Start, waiting for a broker that is still coming up (as at a cluster's start)."""
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(_STARTUP_SECONDS),
            wait=wait_exponential(max=5),
            retry=retry_if_exception_type(BrokerUnavailable),
            reraise=True,
        ):
            with attempt:
                await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect to the broker (raises BrokerUnavailable if it cannot be reached)."""
        try:
            await asyncio.wait_for(self._producer.start(), self._timeout * 2)
        except (KafkaError, TimeoutError, OSError) as exc:
            await self._producer.stop()
            raise BrokerUnavailable(f"cannot reach the broker: {exc}") from exc

    async def stop(self) -> None:
        """Flush and close."""
        await self._producer.stop()

    async def publish(self, topic: str, envelope: Envelope) -> None:
        """Send one event and wait until the broker has it (all in-sync replicas)."""
        with producer_span(topic, envelope.event_id, envelope.trace_context):
            await self.publish_raw(
                topic,
                envelope.key.encode(),
                envelope.message.SerializeToString(),
                envelope.kafka_headers(),
            )

    async def publish_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send bytes as they are (used for dead letters) and wait for the confirm."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailable(f"broker did not confirm the record on {topic}: {exc}") from exc

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[bool]:
        """Send events in order and wait for all of them at once; whether each was confirmed.

        Each record's PRODUCER span covers handing it over; the confirm is one wait for the lot.
        """
        records: list[RawRecord] = []
        for envelope in envelopes:
            with producer_span(topic, envelope.event_id, envelope.trace_context):
                records.append(
                    (
                        topic,
                        envelope.key.encode(),
                        envelope.message.SerializeToString(),
                        envelope.kafka_headers(),
                    )
                )
        return await self.send_many(records)

    async def send_many(self, records: Sequence[RawRecord]) -> list[bool]:
        """Send records (to any topics) in order and wait for all of them at once.

        Returns whether each was confirmed. A record the broker did not confirm within the
        confirm timeout counts as not confirmed (it may still arrive later, as with `publish`).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        sent: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout_at(deadline):
                for topic, key, value, headers in records:
                    sent.append(
                        await self._producer.send(topic, value=value, key=key, headers=headers)
                    )
        except (KafkaError, TimeoutError):
            pass  # what was not handed over is not confirmed
        if sent:
            await asyncio.wait(sent, timeout=max(0.0, deadline - loop.time()))
        confirmed = []
        for future in sent:
            if future.done():
                confirmed.append(not future.cancelled() and future.exception() is None)
            else:
                future.add_done_callback(_retrieve)
                confirmed.append(False)
        return confirmed + [False] * (len(records) - len(sent))

    async def is_connected(self) -> bool:
        """Whether the producer currently holds cluster metadata."""
        client = self._producer.client
        return bool(client.cluster.brokers())


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A confirm that came too late was already answered as unconfirmed; only read its outcome.
    if not future.cancelled():
        future.exception()


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a key, as the Java client and aiokafka compute it.

    The same result as aiokafka's, a word at a time rather than a byte at a time (its
    byte-wise loop cost more than the rest of sending a record).
    """
    length = len(data)
    h = _MURMUR_SEED ^ length
    for word in struct.unpack_from(f"<{length // 4}I", data):
        k = (word * _MURMUR_M) & _MASK
        k ^= k >> 24
        k = (k * _MURMUR_M) & _MASK
        h = ((h * _MURMUR_M) & _MASK) ^ k
    tail, end = length & 3, length & ~3
    if tail:
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * _MURMUR_M) & _MASK
    h ^= h >> 13
    h = (h * _MURMUR_M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partition of a key (murmur2); a random one for no key."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
