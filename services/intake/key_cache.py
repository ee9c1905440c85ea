"""Integrator keys remembered for a moment, so a signed request costs no database query.

A key found active is trusted for `ttl` seconds; a revocation through this registry forgets it at
once, one made elsewhere (the `gridline integrators` command, another intake process) takes
effect within `ttl`. A key found unknown or revoked is remembered as such for `ttl` seconds too
(at most `REFUSED_REMEMBERED` of them), so that a client repeating a bad key costs no query
either; keys issued through this registry are never among them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gridline.db import Database
from services.intake.integrators import Caller, IntegratorRegistry, IssuedKey

# Keys found not active that are remembered at most: random ids cannot fill the memory.
REFUSED_REMEMBERED = 10_000


class CachedRegistry(IntegratorRegistry):
    """An integrator registry whose `caller` answers from memory for `ttl` seconds."""

    def __init__(
        self,
        database: Database,
        server_secret: str,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(database, server_secret)
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, tuple[float, tuple[Caller, str]]] = {}
        # Keys found not active, until when; the oldest goes first once the bound is reached.
        self._refused: dict[str, float] = {}
        # Requests that miss together share one query rather than each asking the database.
        self._lookups: dict[str, asyncio.Future[tuple[Caller, str] | None]] = {}
        # Bumped by every revocation, so a query that started before it remembers nothing.
        self._generation = 0

    def remembers(self, key_id: str) -> bool:
        """Whether `caller` would answer for this key from memory, without a query."""
        moment = self._clock()
        known = self._known.get(key_id)
        return (known is not None and known[0] > moment) or self._refused.get(key_id, 0) > moment

    async def caller(self, key_id: str) -> tuple[Caller, str] | None:
        """The caller an active key stands for, and the key's secret; None if not active."""
        moment = self._clock()
        known = self._known.get(key_id)
        if known is not None and known[0] > moment:
            return known[1]
        if self._refused.get(key_id, 0) > moment:
            return None
        lookup = self._lookups.get(key_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(key_id))
            self._lookups[key_id] = lookup
            lookup.add_done_callback(lambda done: self._finished(key_id, done))
        return await asyncio.shield(lookup)

    def _finished(self, key_id: str, lookup: asyncio.Future[tuple[Caller, str] | None]) -> None:
        if self._lookups.get(key_id) is lookup:
            del self._lookups[key_id]

    async def _look_up(self, key_id: str) -> tuple[Caller, str] | None:
        generation = self._generation
        found = await super().caller(key_id)
        if self._ttl <= 0 or generation != self._generation:
            self._known.pop(key_id, None)
        elif found is None:
            self._known.pop(key_id, None)
            self._refuse(key_id)
        else:
            self._known[key_id] = (self._clock() + self._ttl, found)
        return found

    def _refuse(self, key_id: str) -> None:
        """Remember a key found not active, the oldest such key forgotten past the bound."""
        self._refused.pop(key_id, None)
        if len(self._refused) >= REFUSED_REMEMBERED:
            del self._refused[next(iter(self._refused))]
        self._refused[key_id] = self._clock() + self._ttl

    async def rotate(self, integrator_id: str) -> IssuedKey:
        """A new key; the oldest is revoked (and forgotten) when more than two would be active."""
        issued = await super().rotate(integrator_id)
        self._forget_integrator(integrator_id)
        self._refused.pop(issued.key_id, None)
        return issued

    async def revoke_key(self, key_id: str) -> None:
        """Stop one key at once."""
        await super().revoke_key(key_id)
        self._forget()
        self._known.pop(key_id, None)

    async def revoke(self, integrator_id: str) -> None:
        """Stop an integrator and every key of it at once."""
        await super().revoke(integrator_id)
        self._forget_integrator(integrator_id)

    def _forget(self) -> None:
        """Let no query already under way answer or remember for after a revocation."""
        self._generation += 1
        self._lookups.clear()

    def _forget_integrator(self, integrator_id: str) -> None:
        self._forget()
        for key_id, (_, (caller, _secret)) in list(self._known.items()):
            if caller.integrator_id == integrator_id:
                del self._known[key_id]
