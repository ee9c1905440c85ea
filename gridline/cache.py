"""Redis: the configured server, or an embedded Valkey owned by this process."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gridline.embedded import EmbeddedValkey
from gridline.redis_metrics import instrument_redis
from gridline.settings import Settings


class RedisHandle:
    """A Redis client and, when no URL was given, the embedded server behind it."""

    def __init__(self, settings: Settings) -> None:
        self._url = settings.redis_url
        self._embedded: EmbeddedValkey | None = None
        self._client: aioredis.Redis | None = None

    @property
    def client(self) -> aioredis.Redis:
        """The connected client; there is none before `start`."""
        if self._client is None:
            raise RuntimeError("Redis is not started")
        return self._client

    async def __aenter__(self) -> RedisHandle:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> aioredis.Redis:
        """Connect to the configured server, starting an embedded one if none is configured."""
        url = self._url
        if not url:
            self._embedded = EmbeddedValkey()
            await asyncio.to_thread(self._embedded.start)
            url = self._embedded.url
        self._client = aioredis.from_url(url, decode_responses=True)
        instrument_redis(self._client)
        await self._client.ping()
        return self._client

    async def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return self._client is not None and bool(await self._client.ping())
        except Exception:
            return False

    async def stop(self) -> None:
        """Close the client and stop the embedded server."""
        if self._client is not None:
            await self._client.aclose()
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
