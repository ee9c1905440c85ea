"""Token buckets in Redis, so every intake process shares one limit per caller."""

from __future__ import annotations

import math

import redis.asyncio as aioredis
from fastapi import status

from gridline.problems import ProblemError
from services.intake import metrics
from services.intake.waves import Waves

# Tokens refill at `rate` a second (ARGV[1]) up to `burst` (ARGV[2]); a request takes `cost`
# tokens or waits. The server's clock is used so that every intake process agrees. Takes of
# several requests go in one call: per take, its bucket in KEYS and, if it has a nonce, the
# nonce's key after it; in ARGV whether it has a nonce, its cost and how long to keep the nonce.
# A nonce is spent first: -1 if it was spent before. Answers each take's wait in seconds.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local waits = {}
local k = 1
for i = 3, #ARGV, 3 do
  local bucket = KEYS[k]
  k = k + 1
  local fresh = true
  if ARGV[i] == '1' then
    fresh = redis.call('SET', KEYS[k], '1', 'NX', 'EX', ARGV[i + 2])
    k = k + 1
  end
  local wait = -1
  if fresh then
    local cost = tonumber(ARGV[i + 1])
    local state = redis.call('HMGET', bucket, 'tokens', 'at')
    local tokens = tonumber(state[1]) or burst
    local at = tonumber(state[2]) or now
    tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
    wait = 0
    if tokens >= cost then
      tokens = tokens - cost
    else
      wait = (cost - tokens) / rate
    end
    redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', tostring(now))
    redis.call('EXPIRE', bucket, math.ceil(burst / rate) + 1)
  end
  waits[#waits + 1] = tostring(wait)
end
return waits
"""

# One take: the subject's bucket, the cost, and the nonce to spend (key, seconds) if any.
_Take = tuple[str, int, tuple[str, int] | None]


class NonceReused(Exception):
    """The request's nonce was spent before: a replay."""


class TokenBucket:
    """A per-subject limit: `rate` requests (or records) a second, bursts up to `burst`.

    Takes of requests arriving together go to Redis in one round trip.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        name: str,
        rate: float,
        burst: int,
        linger: float = 0.0,
        most: int = 0,
    ) -> None:
        self._script = redis.register_script(_TAKE)
        self._prefix = f"intake:bucket:{name}:"
        self._rate = rate
        self._burst = burst
        self._takes = Waves(self._take_all, linger, most)

    async def take(
        self, subject: str, cost: int = 1, nonce: tuple[str, int] | None = None
    ) -> int | None:
        """None when allowed, else whole seconds to wait before retrying.

        A cost above the burst can never be met; it is refused with the time a full bucket takes.
        `nonce` (its key, and seconds to keep it) is spent first, even when the rate then
        refuses; NonceReused if it was spent before.
        """
        never = cost > self._burst
        if never and nonce is None:
            return math.ceil(self._burst / self._rate)
        wait = await self._takes((self._prefix + subject, 0 if never else cost, nonce))
        if wait < 0:
            raise NonceReused
        if never:
            return math.ceil(self._burst / self._rate)
        return None if wait <= 0 else max(1, math.ceil(wait))

    async def _take_all(self, takes: list[_Take]) -> list[float]:
        keys: list[str] = []
        args: list[float | int] = [self._rate, self._burst]
        for bucket, cost, nonce in takes:
            keys.append(bucket)
            if nonce is None:
                args += [0, cost, 0]
            else:
                keys.append(nonce[0])
                args += [1, cost, nonce[1]]
        return [float(wait) for wait in await self._script(keys=keys, args=args)]


def over_limit(wait: int, detail: str) -> ProblemError:
    """The counted 429 (`rate_limit.exceeded`) for a caller that must wait `wait` seconds before
    retrying; `detail` says whose limit it is."""
    metrics.RATE_LIMITED.inc()
    return ProblemError(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "rate_limit.exceeded",
        f"{detail}，请于{wait}秒后再试",
        headers={"Retry-After": str(wait)},
    )


# Unknown or revoked keys an address tried in the current minute, shared by every intake process.
_FAILED_LOOKUPS_WINDOW_SECONDS = 60


def _failed_lookups_key(address: str) -> str:
    return f"intake:bad-keys:{address}"


async def unknown_keys_refused(
    redis: aioredis.Redis, address: str, per_minute: int
) -> ProblemError | None:
    """The counted 429 (`rate_limit.unknown_keys`) for an address past `per_minute` unknown
    keys this minute, else None.

    Asked before a key is looked up in the database, so that guessing key ids costs the
    database nothing once the address is over its allowance.
    """
    key = _failed_lookups_key(address)
    tried = await redis.get(key)
    if tried is None or int(tried) < per_minute:
        return None
    wait = max(1, int(await redis.ttl(key)))
    metrics.RATE_LIMITED.inc()
    return ProblemError(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "rate_limit.unknown_keys",
        f"此地址近一分钟内使用未知或已停用密钥的请求过多，请于{wait}秒后再试，并核对密钥编号",
        headers={"Retry-After": str(wait)},
    )


async def count_unknown_key(redis: aioredis.Redis, address: str) -> None:
    """Count one unknown or revoked key tried from `address` in the current minute."""
    key = _failed_lookups_key(address)
    async with redis.pipeline(transaction=True) as pipe:
        # The window starts with the address's first failure and ends a minute later.
        pipe.set(key, 0, ex=_FAILED_LOOKUPS_WINDOW_SECONDS, nx=True)
        pipe.incr(key)
        await pipe.execute()
