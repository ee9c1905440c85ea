"""What a service's own process does once its app has started."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI

from gridline import http
from gridline.http import Listener, service_app, serving
from tests.helpers import eventually


async def _startup_object_collected(*, freeze: bool) -> bool:
    """Serve a small app until it has started; whether what its startup built is still among
    the objects the garbage collector walks."""
    built: list[list[str]] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        built.append(["made at startup"])  # a list of a list: tracked by the collector
        yield

    app = service_app(title="t", version="1", lifespan=lifespan, max_body_bytes=1000)
    server, sockets = serving(app, [Listener("127.0.0.1", 0, None)], freeze=freeze)
    running = asyncio.create_task(server.serve(sockets=sockets))

    async def started() -> bool:
        return server.started

    try:
        await eventually(started)
        return any(found is built[0] for found in gc.get_objects())
    finally:
        server.should_exit = True
        await running
        gc.unfreeze()  # the rest of the test run collects as before


async def test_a_frozen_server_leaves_what_its_startup_built_out_of_collections() -> None:
    gc.unfreeze()
    assert await _startup_object_collected(freeze=False)
    assert not await _startup_object_collected(freeze=True)


def test_the_process_entry_point_serves_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    class Server:
        def run(self, sockets: list[object]) -> None:
            asked["ran"] = True

    def recording(*args: object, **kwargs: Any) -> tuple[Server, list[object]]:
        asked.update(kwargs)
        return Server(), []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    monkeypatch.setattr(http, "serving", recording)
    http.serve(service_app(title="t", version="1", lifespan=lifespan, max_body_bytes=1000), [])
    assert asked == {"freeze": True, "ran": True}
