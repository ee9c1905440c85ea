"""Intake's integrators administered from outside the service (`gridline integrators`).

Each call opens intake's database (brought to the newest revision, as the service does at
start), does one thing through the registry the service itself uses, and closes it. A running
intake sees the change within its key cache's lifetime (`services/intake/key_cache.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from gridline.db import Database
from gridline.settings import Settings
from services.intake.integrators import (
    IntegratorRegistry,
    IntegratorView,
    IssuedKey,
    UnknownIntegrator,
)
from services.intake.schemas import SOURCE_NAMES
from services.intake.storage import MIGRATIONS, TABLES

__all__ = [
    "SOURCE_NAMES",
    "IntegratorView",
    "IssuedKey",
    "UnknownIntegrator",
    "create",
    "list_all",
    "revoke",
    "revoke_key",
    "rotate",
]


@asynccontextmanager
async def _registry(settings: Settings) -> AsyncIterator[IntegratorRegistry]:
    async with Database(settings, "intake", TABLES, MIGRATIONS) as database:
        yield IntegratorRegistry(database, settings.intake_api_key_secret.get_secret_value())


async def create(
    settings: Settings, name: str, scopes: Iterable[str], *, sandbox: bool = False
) -> IssuedKey:
    """A new integrator with one key; ValueError when a scope is not one of `SOURCE_NAMES`.

    A sandbox integrator's posts are all validate-only (docs/integrators/README.md).
    """
    async with _registry(settings) as registry:
        return await registry.create(name, scopes, sandbox=sandbox)


async def list_all(settings: Settings) -> list[IntegratorView]:
    """Every integrator with its scopes and active key ids (never a secret)."""
    async with _registry(settings) as registry:
        return await registry.list()


async def rotate(settings: Settings, integrator_id: str) -> IssuedKey:
    """A new key; the previous one keeps working, an older one is revoked."""
    async with _registry(settings) as registry:
        return await registry.rotate(integrator_id)


async def revoke(settings: Settings, integrator_id: str) -> None:
    """Stop an integrator and all its keys at once; UnknownIntegrator if there is none."""
    async with _registry(settings) as registry:
        await registry.revoke(integrator_id)


async def revoke_key(settings: Settings, key_id: str) -> None:
    """Stop one key at once; UnknownIntegrator if there is none."""
    async with _registry(settings) as registry:
        await registry.revoke_key(key_id)
