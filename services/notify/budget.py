"""Each robot's documented send budget, kept in Redis so every notify replica shares it.

A sliding window per robot and limit: a sorted set of send times (Redis server time, so replicas
with skewed clocks agree). A send is allowed only when every window of the robot has room, and
is then counted in all of them at once.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

# (sends, seconds) per robot kind, as the vendors document them.
ROBOT_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "wecom": ((20, 60.0),),
    "dingtalk": ((20, 60.0),),
    "feishu": ((100, 60.0), (5, 1.0)),
}

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 1
"""


class RobotBudget:
    """Takes one send from a robot's budget, atomically across replicas."""

    def __init__(
        self,
        client: aioredis.Redis,
        limits: dict[str, tuple[tuple[int, float], ...]] | None = None,
    ) -> None:
        self._client = client
        self._limits = ROBOT_LIMITS if limits is None else limits
        self._take = client.register_script(_TAKE)

    async def take(self, kind: str, robot_id: str) -> bool:
        """One send for `robot_id`, if every window has room; unlimited kinds always may."""
        limits = self._limits.get(kind)
        if not limits:
            return True
        keys = [f"gridline:notify:budget:{robot_id}:{seconds:g}" for _, seconds in limits]
        args: list[str] = [uuid.uuid4().hex]
        for sends, seconds in limits:
            args += [str(sends), str(int(seconds * 1000))]
        return bool(await self._take(keys=keys, args=args))
