"""Assignment's app factory: directory, gRPC server and the reports consumer in one lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.output import event_output
from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.http import service_app
from gridline.links import PageLinks
from gridline.logging import get_logger
from gridline.personal import Sealer
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.assignment import demo_county, metrics, routes, storage
from services.assignment.assignee import CadreLoad
from services.assignment.consumers import (
    GROUP,
    TASKS_GROUP,
    report_handler,
    task_handler,
    tasks_accepts,
)
from services.assignment.directory import Directory
from services.assignment.risk import DEFAULT_POLICY_FILE, RiskAreas, load_policy
from services.assignment.servicer import DirectoryServicer

log = get_logger(__name__)


async def _load_directory(db: Database, seed_demo_county: bool, sealer: Sealer) -> Directory:
    async with db.session() as session:
        if seed_demo_county and await storage.directory_size(session) == 0:
            county = demo_county.generate()
            await storage.replace_directory(
                session,
                Directory(county.nodes, county.people, county.groups, county.micro_grids),
                sealer,
            )
            log.info("demo county loaded", nodes=len(county.nodes))
    async with db.session() as session:
        directory = await storage.load_directory(session, sealer)
    metrics.DIRECTORY_NODES.set(len(directory))
    return directory


def create_app(settings: Settings) -> FastAPI:
    """Build assignment's ASGI app."""

    # A bad policy file stops the service at start, before it takes any report.
    policy = load_policy(settings.assignment_policy_file or DEFAULT_POLICY_FILE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db:
            sealer = Sealer(settings.pii_key.get_secret_value())
            directory = await _load_directory(db, settings.seed_demo_county, sealer)
            async with db.session() as session:
                load = CadreLoad(await storage.open_counts(session))
                areas = RiskAreas(await storage.risk_area_history(session))
            rpc = RpcServer(
                settings.host,
                settings.directory_grpc_port,
                [
                    lambda server: directory_pb2_grpc.add_DirectoryServicer_to_server(
                        DirectoryServicer(directory, db, load), server
                    )
                ],
                [directory_pb2.DESCRIPTOR.services_by_name["Directory"].full_name],
            )
            async with (
                rpc,
                event_output(settings, db) as outbox,
                ConsumerRunner(
                    settings=settings,
                    topic=topics.REPORTS,
                    group=GROUP,
                    handler=report_handler(
                        directory, PageLinks.from_settings(settings), load, policy, areas
                    ),
                    db=db,
                ) as runner,
                ConsumerRunner(
                    settings=settings,
                    topic=topics.TASKS,
                    group=TASKS_GROUP,
                    handler=task_handler(load),
                    accepts=tasks_accepts,
                    db=db,
                ) as tasks_runner,
            ):
                app.state.directory = directory
                app.state.risk_areas = areas
                app.state.policy = policy
                app.state.db = db
                app.state.readiness = {
                    "database": db.ping,
                    "broker": outbox.producer.is_connected,
                    "outbox": outbox.alive,
                    "consumer": runner.alive,
                    "tasks consumer": tasks_runner.alive,
                }
                yield

    app = service_app(
        title="Gridline assignment",
        version="1",
        description="The grid directory; places reports and creates their tasks.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    return app
