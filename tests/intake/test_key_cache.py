"""Integrator keys remembered briefly: revocations here act at once, elsewhere within the TTL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gridline.db import Database
from gridline.settings import Settings
from services.intake.integrators import IntegratorRegistry
from services.intake.key_cache import CachedRegistry
from services.intake.storage import TABLES


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def registries(
    tmp_path: Path,
) -> AsyncIterator[tuple[CachedRegistry, IntegratorRegistry, Clock]]:
    """A cached registry (as intake holds it), a plain one on the same database (the CLI), and
    the cached one's clock."""
    settings = Settings(data_dir=tmp_path)
    secret = settings.intake_api_key_secret.get_secret_value()
    clock = Clock()
    async with Database(settings, "intake", TABLES) as database:
        yield (
            CachedRegistry(database, secret, 1.0, clock),
            IntegratorRegistry(database, secret),
            clock,
        )


async def test_a_revocation_elsewhere_takes_effect_within_the_ttl(
    registries: tuple[CachedRegistry, IntegratorRegistry, Clock],
) -> None:
    cached, elsewhere, clock = registries
    key = await elsewhere.create("feed", ["health_code_feed"])
    assert (found := await cached.caller(key.key_id)) is not None
    assert found[1] == key.secret
    await elsewhere.revoke_key(key.key_id)
    assert await cached.caller(key.key_id) is not None
    clock.now += 1.01
    assert await cached.caller(key.key_id) is None


async def test_a_revocation_through_the_cached_registry_acts_at_once(
    registries: tuple[CachedRegistry, IntegratorRegistry, Clock],
) -> None:
    cached, _, _ = registries
    key = await cached.create("feed", ["health_code_feed"])
    other = await cached.create("other", ["health_code_feed"])
    assert await cached.caller(key.key_id) is not None
    assert await cached.caller(other.key_id) is not None
    await cached.revoke_key(key.key_id)
    await cached.revoke(other.integrator_id)
    assert await cached.caller(key.key_id) is None
    assert await cached.caller(other.key_id) is None


async def test_requests_missing_together_share_one_query(
    registries: tuple[CachedRegistry, IntegratorRegistry, Clock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cached, _, _ = registries
    key = await cached.create("feed", ["health_code_feed"])
    queries = 0
    ask = IntegratorRegistry.caller

    async def counted(self: IntegratorRegistry, key_id: str) -> object:
        nonlocal queries
        queries += 1
        return await ask(self, key_id)

    monkeypatch.setattr(IntegratorRegistry, "caller", counted)
    answers = await asyncio.gather(*(cached.caller(key.key_id) for _ in range(20)))
    assert queries == 1
    assert all(answer == answers[0] is not None for answer in answers)
