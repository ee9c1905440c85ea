"""Escalation's app factory: the tasks consumer, the deadline watcher and the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.producer import EventProducer
from gridline.contracts.v1 import tasks_pb2, tasks_pb2_grpc
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.http import service_app
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.escalation import routes, storage
from services.escalation.consumers import GROUP, task_handler
from services.escalation.deadlines import DeadlineWatcher
from services.escalation.servicer import TasksServicer


def create_app(settings: Settings) -> FastAPI:
    """Build escalation's ASGI app."""
    ack_deadline = timedelta(seconds=settings.ack_deadline_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            Database(settings, "escalation", storage.TABLES) as db,
            EventProducer(settings) as producer,
            DirectoryClient(settings.directory_target) as directory,
            ConsumerRunner(
                settings=settings,
                topic=topics.TASKS,
                group=GROUP,
                handler=task_handler(ack_deadline, settings.public_base_url),
                db=db,
                producer=producer,
            ) as runner,
            DeadlineWatcher(
                db, directory, producer, ack_deadline, settings.escalation_tick_seconds
            ) as deadlines,
        ):
            rpc = RpcServer(
                settings.host,
                settings.tasks_grpc_port,
                [
                    lambda server: tasks_pb2_grpc.add_TasksServicer_to_server(
                        TasksServicer(db, producer), server
                    )
                ],
                [tasks_pb2.DESCRIPTOR.services_by_name["Tasks"].full_name],
            )
            await rpc.start()
            app.state.db = db
            app.state.producer = producer
            app.state.readiness = {
                "database": db.ping,
                "broker": producer.is_connected,
                "consumer": runner.alive,
                "deadlines": deadlines.alive,
            }
            try:
                yield
            finally:
                await rpc.stop()

    app = service_app(
        title="Gridline escalation",
        version="1",
        description="Tasks, their deadlines and escalations up the chain.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    return app
