"""Redis as its client sees it: the time and the failures of each command and pipeline.

`gridline.cache.RedisHandle.start` calls `instrument_redis(self._client)` once the client exists.
Only that client is measured (wrapped on the instance, not on the class), so a process without
Redis exports no Redis series and the dashboard's Redis panels show the services that use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gridline.metrics import REDIS_COMMAND_SECONDS, REDIS_ERRORS

P = ParamSpec("P")
R = TypeVar("R")

OPERATIONS = ("command", "pipeline")
ERRORS = ("connection", "timeout", "response", "other")


def instrument_redis(client: aioredis.Redis) -> None:
    """Time every command and pipeline `client` runs and count those that fail."""
    # Both operations and every error start at zero, so rates and ratios have a series to
    # read before the first failure.
    for operation in OPERATIONS:
        REDIS_COMMAND_SECONDS.labels(operation)
        for error in ERRORS:
            REDIS_ERRORS.labels(operation, error)
    # Scripts (EVALSHA) and single commands go through the client's `execute_command`.
    client.execute_command = _measured("command", client.execute_command)  # type: ignore[method-assign]
    new_pipeline = client.pipeline

    def pipeline(
        transaction: bool = True, shard_hint: str | None = None
    ) -> aioredis.client.Pipeline:
        made = new_pipeline(transaction, shard_hint)
        # A pipeline's commands are queued locally; only `execute` talks to Redis.
        made.execute = _measured("pipeline", made.execute)  # type: ignore[method-assign]
        return made

    client.pipeline = pipeline  # type: ignore[method-assign]


def error_label(error: Exception) -> str | None:
    """The `error` label of a failure; None for what is no failure of Redis (a script not yet
    loaded, which the client loads and runs again)."""
    if isinstance(error, NoScriptError):
        return None
    if isinstance(error, RedisTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, RedisConnectionError | ConnectionError | OSError):
        return "connection"
    if isinstance(error, ResponseError):
        return "response"
    return "other"


def _measured(
    operation: str, call: Callable[P, Coroutine[Any, Any, R]]
) -> Callable[P, Coroutine[Any, Any, R]]:
    """`call` observed in the histogram and, when it fails, counted by its error."""
    seconds = REDIS_COMMAND_SECONDS.labels(operation)

    @wraps(call)
    async def measured(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        except Exception as error:
            label = error_label(error)
            if label is not None:
                REDIS_ERRORS.labels(operation, label).inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)

    return measured
