"""Assignment's Directory served over gRPC on a loopback port, for the services that call it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.embedded import free_port
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.assignment import storage
from services.assignment.assignee import CadreLoad
from services.assignment.directory import Directory
from services.assignment.following import Current
from services.assignment.servicer import DirectoryServicer


@asynccontextmanager
async def directory_server(
    directory: Directory, settings: Settings, port: int | None = None
) -> AsyncIterator[str]:
    """The real Directory servicer over `directory` (no tasks handed out) on `port` (a free one
    unless given) until the context closes; yields its target."""
    port = port or free_port()
    async with Database(settings, "assignment", storage.TABLES) as db:
        servicer = DirectoryServicer(Current(directory), db, CadreLoad())
        server = RpcServer.serving(
            "127.0.0.1", port,
            directory_pb2_grpc.add_DirectoryServicer_to_server, servicer,
            directory_pb2.DESCRIPTOR.services_by_name["Directory"],
        )  # fmt: skip
        async with server:
            yield f"127.0.0.1:{port}"
