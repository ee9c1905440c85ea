"""Token buckets in Redis, so every intake process shares one limit per caller."""

from __future__ import annotations

import math

import redis.asyncio as aioredis

# Tokens refill at `rate` a second up to `burst`; a request takes `cost` tokens or waits.
# The server's clock is used so that every intake process agrees.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class TokenBucket:
    """A per-subject limit: `rate` requests (or records) a second, bursts up to `burst`."""

    def __init__(self, redis: aioredis.Redis, name: str, rate: float, burst: int) -> None:
        self._script = redis.register_script(_TAKE)
        self._prefix = f"intake:bucket:{name}:"
        self._rate = rate
        self._burst = burst

    async def take(self, subject: str, cost: int = 1) -> int | None:
        """None when allowed, else whole seconds to wait before retrying.

        A cost above the burst can never be met; it is refused with the time a full bucket takes.
        """
        if cost > self._burst:
            return math.ceil(self._burst / self._rate)
        wait = float(await self._script(keys=[self._prefix + subject], args=[
            self._rate, self._burst, cost
        ]))  # fmt: skip
        return None if wait <= 0 else max(1, math.ceil(wait))
