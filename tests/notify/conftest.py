"""Fixtures of notify's tests: the loopback vendors and a Redis of notify's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from gridline.embedded import EmbeddedValkey
from tests.notify.vendors import Vendors, running_vendors


@pytest.fixture
def vendors() -> Iterator[Vendors]:
    """Every vendor on one loopback server, fresh for each test."""
    with running_vendors() as state:
        yield state


@pytest.fixture(scope="session")
def valkey() -> Iterator[EmbeddedValkey]:
    """An embedded Valkey only notify's tests use, so each test may empty it."""
    server = EmbeddedValkey()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(valkey: EmbeddedValkey) -> AsyncIterator[aioredis.Redis]:
    """A client on an empty database: no budget carries over between tests."""
    client = aioredis.from_url(valkey.url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()
