"""Creating, listing, rotating and revoking integrators and their keys.

An integrator has at most two active keys: rotating adds a new key and keeps the previous one
working until the integrator has switched (the next rotation or `revoke_key` retires it).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from gridline.db import Database
from gridline.timestamps import now
from services.intake.schemas import SOURCE_NAMES
from services.intake.signing import key_secret, secret_hash
from services.intake.storage import ApiKey, Integrator, active_key, active_keys

MAX_ACTIVE_KEYS = 2


class UnknownIntegrator(LookupError):
    """No such integrator (or key)."""


@dataclass(frozen=True)
class IssuedKey:
    """A key as handed to the integrator once: its id and secret."""

    integrator_id: str
    key_id: str
    secret: str


@dataclass(frozen=True)
class IntegratorView:
    """An integrator as listed: never a secret."""

    integrator_id: str
    name: str
    scopes: list[str]
    active_keys: list[str]
    revoked_at: datetime | None


@dataclass(frozen=True)
class Caller:
    """An authenticated integrator on one request."""

    integrator_id: str
    key_id: str
    scopes: frozenset[str]
    # A sandbox integrator's posts are validate-only: answered, never published.
    sandbox: bool = False


class IntegratorRegistry:
    """The integrators in intake's database; keys derive from the server's key secret."""

    def __init__(self, database: Database, server_secret: str) -> None:
        self._db = database
        self._server_secret = server_secret

    async def create(self, name: str, scopes: Iterable[str], *, sandbox: bool = False) -> IssuedKey:
        """A new integrator with one key; a sandbox one's posts are all validate-only."""
        scope_list = sorted(set(scopes))
        unknown = set(scope_list) - set(SOURCE_NAMES)
        if unknown or not scope_list:
            raise ValueError(
                f"scopes must be among {', '.join(SOURCE_NAMES)}; got {', '.join(scope_list)}"
            )
        integrator_id = f"int_{secrets.token_hex(6)}"
        async with self._db.session() as session:
            session.add(
                Integrator(
                    integrator_id=integrator_id,
                    name=name,
                    scopes=" ".join(scope_list),
                    sandbox=sandbox,
                    created_at=now(),
                )
            )
        return await self.rotate(integrator_id)

    async def rotate(self, integrator_id: str) -> IssuedKey:
        """A new key; the oldest is revoked when more than two would be active."""
        key_id = f"key_{secrets.token_hex(8)}"
        secret = key_secret(self._server_secret, key_id)
        async with self._db.session() as session:
            integrator = await session.get(Integrator, integrator_id)
            if integrator is None or integrator.revoked_at is not None:
                raise UnknownIntegrator(f"no active integrator {integrator_id}")
            keys = await active_keys(session, integrator_id)
            for old in keys[: max(0, len(keys) + 1 - MAX_ACTIVE_KEYS)]:
                old.revoked_at = now()
                session.add(old)
            session.add(
                ApiKey(
                    key_id=key_id,
                    integrator_id=integrator_id,
                    secret_sha256=secret_hash(secret),
                    created_at=now(),
                )
            )
        return IssuedKey(integrator_id, key_id, secret)

    async def revoke_key(self, key_id: str) -> None:
        """Stop one key at once."""
        async with self._db.session() as session:
            key = await session.get(ApiKey, key_id)
            if key is None:
                raise UnknownIntegrator(f"no key {key_id}")
            key.revoked_at = key.revoked_at or now()
            session.add(key)

    async def revoke(self, integrator_id: str) -> None:
        """Stop an integrator and every key of it at once."""
        async with self._db.session() as session:
            integrator = await session.get(Integrator, integrator_id)
            if integrator is None:
                raise UnknownIntegrator(f"no integrator {integrator_id}")
            integrator.revoked_at = integrator.revoked_at or now()
            session.add(integrator)
            for key in await active_keys(session, integrator_id):
                key.revoked_at = now()
                session.add(key)

    async def list(self) -> list[IntegratorView]:
        """Every integrator with its active key ids."""
        async with self._db.session() as session:
            integrators = list(
                await session.exec(select(Integrator).order_by(col(Integrator.created_at)))
            )
            views = []
            for integrator in integrators:
                keys = await active_keys(session, integrator.integrator_id)
                views.append(
                    IntegratorView(
                        integrator_id=integrator.integrator_id,
                        name=integrator.name,
                        scopes=sorted(integrator.scope_set),
                        active_keys=[k.key_id for k in keys],
                        revoked_at=integrator.revoked_at,
                    )
                )
        return views

    async def caller(self, key_id: str) -> tuple[Caller, str] | None:
        """The caller an active key stands for, and the key's secret; None if not active."""
        async with self._db.session() as session:
            found = await active_key(session, key_id)
        if found is None:
            return None
        key, integrator = found
        secret = key_secret(self._server_secret, key_id)
        if secret_hash(secret) != key.secret_sha256:
            return None  # the server's key secret changed since the key was issued
        caller = Caller(
            integrator.integrator_id, key_id, frozenset(integrator.scope_set), integrator.sandbox
        )
        return caller, secret
