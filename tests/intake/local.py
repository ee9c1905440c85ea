"""A service's real app started without a broker: for tests of its HTTP edges.

The app is the one `create_app` builds and its lifespan starts everything but the two parts
that talk to Kafka: the event output is an outbox whose stand-in producer confirms every record
at once (and keeps it), and consumers are idle stand-ins. Everything else is real: the
database, Redis (an embedded Valkey unless `redis_url` is given), gRPC servers on free ports,
the middleware and the routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gridline.bus.envelope import Envelope
from gridline.bus.outbox import Outbox
from gridline.db import Database
from gridline.embedded import free_port
from gridline.settings import Settings


class Confirming:
    """Stands in for the producer: every record is confirmed at once and kept."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Envelope]] = []

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[bool]:
        """Keep the records; all confirmed."""
        self.records += [(topic, envelope) for envelope in envelopes]
        return [True] * len(envelopes)

    async def is_connected(self) -> bool:
        """Always."""
        return True


class _IdleConsumer:
    """Stands in for a consumer: consumes nothing, and is alive."""

    def __init__(self, **_: Any) -> None:
        pass

    async def __aenter__(self) -> _IdleConsumer:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass

    async def alive(self) -> bool:
        return True


def local_settings(settings: Settings) -> Settings:
    """`settings` with every gRPC port free and the peers it calls at ports nobody serves."""
    return settings.model_copy(
        update={
            "directory_grpc_port": free_port(),
            "tasks_grpc_port": free_port(),
            "notify_grpc_port": free_port(),
            "directory_target": f"127.0.0.1:{free_port()}",
            "tasks_target": f"127.0.0.1:{free_port()}",
        }
    )


@asynccontextmanager
async def started(
    create_app: Callable[[Settings], FastAPI],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, Confirming]]:
    """The app started on `settings`, an HTTP client whose address is `client`, and what the
    app published."""
    producer = Confirming()

    @asynccontextmanager
    async def output(settings: Settings, db: Database) -> AsyncIterator[Outbox]:
        # Entered for its write hook only: the producer confirms when asked.
        yield Outbox(db, producer, settings)  # type: ignore[arg-type]

    monkeypatch.setattr("gridline.service.event_output", output)
    monkeypatch.setattr("gridline.service.ConsumerRunner", _IdleConsumer)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            yield http, app, producer
