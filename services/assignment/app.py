"""Assignment's app factory: directory, gRPC server and the reports consumer in one lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.http import service_app
from gridline.logging import get_logger
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.assignment import demo_county, metrics, storage
from services.assignment.consumers import GROUP, report_handler
from services.assignment.directory import Directory
from services.assignment.servicer import DirectoryServicer

log = get_logger(__name__)


async def _load_directory(db: Database, seed_demo_county: bool) -> Directory:
    async with db.session() as session:
        if seed_demo_county and await storage.directory_size(session) == 0:
            county = demo_county.generate()
            await storage.replace_directory(session, county.nodes, county.people, county.groups)
            log.info("demo county loaded", nodes=len(county.nodes))
    async with db.session() as session:
        directory = await storage.load_directory(session)
    metrics.DIRECTORY_NODES.set(len(directory))
    return directory


def create_app(settings: Settings) -> FastAPI:
    """Build assignment's ASGI app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Database(settings, "assignment", storage.TABLES) as db:
            directory = await _load_directory(db, settings.seed_demo_county)
            rpc = RpcServer(
                settings.host,
                settings.directory_grpc_port,
                [
                    lambda server: directory_pb2_grpc.add_DirectoryServicer_to_server(
                        DirectoryServicer(directory, db), server
                    )
                ],
                [directory_pb2.DESCRIPTOR.services_by_name["Directory"].full_name],
            )
            await rpc.start()
            try:
                async with (
                    EventProducer(settings) as producer,
                    ConsumerRunner(
                        settings=settings,
                        topic=topics.REPORTS,
                        group=GROUP,
                        handler=report_handler(directory, producer, settings.public_base_url),
                        db=db,
                        producer=producer,
                    ) as runner,
                ):
                    app.state.readiness = {
                        "database": db.ping,
                        "broker": producer.is_connected,
                        "consumer": runner.alive,
                    }
                    yield
            finally:
                await rpc.stop()

    return service_app(
        title="Gridline assignment",
        version="1",
        description="The grid directory; places reports and creates their tasks.",
        lifespan=lifespan,
    )
