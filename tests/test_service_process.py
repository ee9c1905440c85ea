"""What a service's own process does once its app has started."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridline.http import Listener, service_app, serving
from tests.helpers import eventually


async def _frozen_after_startup(*, freeze: bool) -> int:
    """Serve a small app until it has started; how many objects the collector then skips."""
    built: list[object] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        built.append({"made": "at startup"})
        yield

    app = service_app(title="t", version="1", lifespan=lifespan, max_body_bytes=1000)
    server, sockets = serving(app, [Listener("127.0.0.1", 0, None)], freeze=freeze)
    running = asyncio.create_task(server.serve(sockets=sockets))

    async def started() -> bool:
        return server.started

    try:
        await eventually(started)
        assert built, "the lifespan ran"
        return gc.get_freeze_count()
    finally:
        server.should_exit = True
        await running
        gc.unfreeze()  # the rest of the test run collects as before


async def test_a_service_process_leaves_what_its_startup_built_out_of_full_collections() -> None:
    gc.unfreeze()
    assert await _frozen_after_startup(freeze=False) == 0
    # `serve`, the processes' own entry, freezes: what the imports and the startup built.
    assert await _frozen_after_startup(freeze=True) > 10_000
