"""Assignment's app factory: directory, gRPC server and the reports consumer in one lifespan.

The directory and risk areas are loaded at start and followed while the replica runs
(`following`): a change made through any replica, or a `gridline directory import`, reaches
this one without a restart.
"""

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
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.assignment import demo_county, routes, storage
from services.assignment.assignee import CadreLoad
from services.assignment.consumers import (
    GROUP,
    TASKS_GROUP,
    report_handler,
    task_handler,
    tasks_accepts,
)
from services.assignment.directory import Directory
from services.assignment.following import following
from services.assignment.risk import DEFAULT_POLICY_FILE, load_policy
from services.assignment.servicer import DirectoryServicer

log = get_logger(__name__)


async def _seed_demo_county(db: Database) -> None:
    async with db.session() as session:
        if await storage.directory_size(session) == 0:
            county = demo_county.generate()
            await storage.replace_directory(
                session, Directory(county.nodes, county.people, county.groups, county.micro_grids)
            )
            log.info("demo county loaded", nodes=len(county.nodes))


def create_app(settings: Settings) -> FastAPI:
    """Build assignment's ASGI app."""

    # A bad policy file stops the service at start, before it takes any report.
    policy = load_policy(settings.assignment_policy_file or DEFAULT_POLICY_FILE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Database(settings, "assignment", storage.TABLES, storage.MIGRATIONS) as db:
            if settings.seed_demo_county:
                await _seed_demo_county(db)
            async with db.session() as session:
                load = CadreLoad(await storage.open_counts(session))
            async with following(db, settings.assignment_follow_seconds) as follower:
                rpc = RpcServer(
                    settings.host,
                    settings.directory_grpc_port,
                    [
                        lambda server: directory_pb2_grpc.add_DirectoryServicer_to_server(
                            DirectoryServicer(follower.current, db, load), server
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
                            follower.current, PageLinks.from_settings(settings), load, policy
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
                    app.state.follower = follower
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
