"""The USE metrics of a service's resources: its database pool and its Redis client."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gridline.db_metrics import instrument_pool
from gridline.embedded import EmbeddedValkey, free_port
from gridline.redis_metrics import error_label, instrument_redis


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_pool_gauge_counts_connections_in_use_at_each_scrape(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}")
    instrument_pool(engine, "pool_test")
    try:
        assert sample("gridline_db_pool_capacity_connections", database="pool_test") == 15
        assert sample("gridline_db_pool_checked_out_connections", database="pool_test") == 0
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(text("SELECT 1"))
            await second.execute(text("SELECT 1"))
            assert sample("gridline_db_pool_checked_out_connections", database="pool_test") == 2
        assert sample("gridline_db_pool_checked_out_connections", database="pool_test") == 0
        # dispose() replaces the pool: the gauge follows the engine's new one.
        await engine.dispose()
        async with engine.connect():
            assert sample("gridline_db_pool_checked_out_connections", database="pool_test") == 1
    finally:
        await engine.dispose()


async def test_an_unbounded_overflow_is_an_infinite_capacity(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", max_overflow=-1)
    instrument_pool(engine, "pool_unbounded")
    assert math.isinf(sample("gridline_db_pool_capacity_connections", database="pool_unbounded"))
    await engine.dispose()


@pytest.fixture(scope="module")
def valkey() -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey()
    server.start()
    yield server
    server.stop()


async def test_redis_commands_scripts_and_pipelines_are_timed(valkey: EmbeddedValkey) -> None:
    client = aioredis.from_url(valkey.url, decode_responses=True)
    instrument_redis(client)
    commands = sample("gridline_redis_command_duration_seconds_count", operation="command")
    pipelines = sample("gridline_redis_command_duration_seconds_count", operation="pipeline")
    response_errors = sample("gridline_redis_errors_total", operation="command", error="response")
    try:
        await client.set("use:key", "1")
        assert await client.get("use:key") == "1"
        # A script's first run meets NOSCRIPT, which the client answers by loading it: no error.
        script = client.register_script("return redis.call('GET', KEYS[1])")
        assert await script(keys=["use:key"]) == "1"
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("use:count")
            pipe.expire("use:count", 60)
            assert (await pipe.execute())[0] == 1
        await client.set("use:text", "x")
        with pytest.raises(ResponseError):
            await client.incr("use:text")
    finally:
        await client.aclose()
    # SET, GET, EVALSHA (refused), SCRIPT LOAD, EVALSHA, SET, INCR.
    assert sample("gridline_redis_command_duration_seconds_count", operation="command") == (
        commands + 7
    )
    assert sample("gridline_redis_command_duration_seconds_count", operation="pipeline") == (
        pipelines + 1
    )
    assert sample("gridline_redis_errors_total", operation="command", error="response") == (
        response_errors + 1
    )


async def test_a_redis_that_cannot_be_reached_counts_connection_errors() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True)
    instrument_redis(client)
    before = sample("gridline_redis_errors_total", operation="command", error="connection")
    with pytest.raises(RedisConnectionError):
        await client.get("anything")
    await client.aclose()
    assert sample("gridline_redis_errors_total", operation="command", error="connection") > before


def test_error_labels() -> None:
    assert error_label(NoScriptError("NOSCRIPT")) is None
    assert error_label(RedisTimeoutError()) == "timeout"
    assert error_label(TimeoutError()) == "timeout"
    assert error_label(RedisConnectionError()) == "connection"
    assert error_label(ConnectionRefusedError()) == "connection"
    assert error_label(ResponseError("WRONGTYPE")) == "response"
    assert error_label(ValueError()) == "other"
