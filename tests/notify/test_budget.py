"""The per-robot budget in Redis, shared by replicas."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from services.notify.budget import ROBOT_LIMITS, RobotBudget
from tests.helpers import eventually


async def test_two_replicas_share_one_budget(redis_client: aioredis.Redis) -> None:
    replicas = [RobotBudget(redis_client), RobotBudget(redis_client)]
    granted = await asyncio.gather(
        *(replicas[n % 2].take("wecom", "wecom:robot-a") for n in range(50))
    )
    assert sum(granted) == ROBOT_LIMITS["wecom"][0][0] == 20
    # Another robot has its own budget.
    assert await replicas[0].take("wecom", "wecom:robot-b")


async def test_every_window_must_have_room(redis_client: aioredis.Redis) -> None:
    budget = RobotBudget(redis_client, {"feishu": ((100, 60.0), (5, 1.0))})
    first = [await budget.take("feishu", "feishu:x") for _ in range(8)]
    assert first == [True] * 5 + [False] * 3  # 5 a second, though 100 a minute

    async def room_again() -> bool:
        return await budget.take("feishu", "feishu:x")

    await eventually(room_again, within=10)
    # A refused take was not counted: the minute window holds only the granted sends.
    assert await redis_client.zcard("gridline:notify:budget:feishu:x:60") == 6


async def test_unlimited_kinds_always_may(redis_client: aioredis.Redis) -> None:
    budget = RobotBudget(redis_client)
    assert all([await budget.take("signed_webhook", "hook") for _ in range(100)])
