"""Producing events with `acks=all`, answering only once the broker has them."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gridline.bus.envelope import Envelope
from gridline.settings import Settings

_STARTUP_SECONDS = 60


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
            linger_ms=1,
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
            await asyncio.wait_for(
                self._producer.send_and_wait(topic, value=value, key=key, headers=headers),
                self._timeout,
            )
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailable(f"broker did not confirm the record on {topic}: {exc}") from exc

    async def is_connected(self) -> bool:
        """Whether the producer currently holds cluster metadata."""
        client = self._producer.client
        return bool(client.cluster.brokers())
