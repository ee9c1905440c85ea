"""Intake for its tests: in-process on the session's broker, or as its own process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.topics import ensure_topics
from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from gridline.embedded import free_port, stop_process
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.intake.app import create_app
from tests.helpers import eventually


@asynccontextmanager
async def running_intake(
    bootstrap: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """An HTTP client on a started intake app, and the app (for its state)."""
    await ensure_topics(bootstrap, 1, 1, (topics.REPORTS,))
    settings = Settings(
        kafka_bootstrap=bootstrap, kafka_idempotence=False, data_dir=data_dir, **overrides
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
            yield http, app


@contextmanager
def intake_process(bootstrap: str, data_dir: Path, **env: str) -> Iterator[str]:
    """`python -m services.intake` on loopback with its own embedded Valkey; yields its URL."""
    asyncio.run(ensure_topics(bootstrap, 1, 1, (topics.REPORTS,)))
    port = free_port()
    process_env = {
        **os.environ,
        "GRIDLINE_DATA_DIR": str(data_dir),
        "GRIDLINE_KAFKA_BOOTSTRAP": bootstrap,
        "GRIDLINE_KAFKA_IDEMPOTENCE": "false",
        "GRIDLINE_REDIS_URL": "",
        "GRIDLINE_INTAKE_HTTP_PORT": str(port),
        # Nothing listens there: report status answers quickly with what it could not ask.
        "GRIDLINE_DIRECTORY_TARGET": f"127.0.0.1:{free_port()}",
        "GRIDLINE_TASKS_TARGET": f"127.0.0.1:{free_port()}",
        **env,
    }
    with (data_dir / "intake.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.intake"], env=process_env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        async with httpx.AsyncClient() as client:
            try:
                return (await client.get(f"{url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

    try:
        asyncio.run(eventually(ready, within=60))
        yield url
    finally:
        stop_process(process)


class _NoPlacements(directory_pb2_grpc.DirectoryServicer):
    async def GetPlacement(
        self, request: directory_pb2.GetPlacementRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Placement:
        await context.abort(grpc.StatusCode.NOT_FOUND, f"report {request.report_id!r} not placed")
        raise AssertionError("abort raises")


class _NoTasks(tasks_pb2_grpc.TasksServicer):
    async def FindTasks(
        self, request: tasks_pb2.FindTasksRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.FindTasksResponse:
        return tasks_pb2.FindTasksResponse()


@contextmanager
def empty_owning_services() -> Iterator[str]:
    """A loopback gRPC server standing in for Directory and Tasks that know no report.

    Runs on its own event loop in a thread; yields its target.
    """
    port = free_port()
    loop = asyncio.new_event_loop()

    async def started() -> RpcServer:
        # grpc.aio binds a server to the loop it is created on: create it on the thread's loop.
        server = RpcServer(
            "127.0.0.1",
            port,
            [
                lambda s: directory_pb2_grpc.add_DirectoryServicer_to_server(_NoPlacements(), s),
                lambda s: tasks_pb2_grpc.add_TasksServicer_to_server(_NoTasks(), s),
            ],
            ["gridline.contracts.v1.Directory", "gridline.contracts.v1.Tasks"],
        )
        await server.start()
        return server

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(started(), loop).result(timeout=30)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
