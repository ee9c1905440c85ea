"""Notify's app factory: the channels, the groups file and the notifications consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.output import event_output
from gridline.cache import RedisHandle
from gridline.contracts.v1 import notify_pb2, notify_pb2_grpc
from gridline.db import Database
from gridline.http import service_app
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.notify import routes, storage
from services.notify.budget import RobotBudget
from services.notify.consumers import (
    GROUP,
    Deliverer,
    RetryPolicy,
    notification_batch_handler,
)
from services.notify.digests import Digester
from services.notify.routing import build_router
from services.notify.servicer import NotifyServicer


def create_app(settings: Settings) -> FastAPI:
    """Build notify's ASGI app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A bad groups file stops the start with its error, before anything is consumed.
        router = build_router(settings)
        try:
            async with (
                Database(settings, "notify", storage.TABLES, storage.MIGRATIONS) as db,
                RedisHandle(settings) as redis,
                # After the database, before the runner: the runner stops first and the outbox
                # then publishes what it committed last.
                event_output(settings, db) as outbox,
            ):
                deliverer = Deliverer(
                    router,
                    db,
                    RetryPolicy.from_settings(settings),
                    RobotBudget(redis.client),
                    settings.notify_concurrency,
                )
                async with (
                    Digester(deliverer, db),
                    ConsumerRunner(
                        settings=settings,
                        topic=topics.NOTIFICATIONS,
                        group=GROUP,
                        batch_handler=notification_batch_handler(deliverer),
                        db=db,
                    ) as runner,
                    RpcServer(
                        settings.host,
                        settings.notify_grpc_port,
                        [
                            lambda server: notify_pb2_grpc.add_NotifyServicer_to_server(
                                NotifyServicer(db), server
                            )
                        ],
                        [notify_pb2.DESCRIPTOR.services_by_name["Notify"].full_name],
                    ),
                ):
                    app.state.db = db
                    app.state.readiness = {
                        "database": db.ping,
                        "broker": outbox.producer.is_connected,
                        "outbox": outbox.alive,
                        "consumer": runner.alive,
                        "redis": redis.ping,
                    }
                    yield
        finally:
            await router.close()

    app = service_app(
        title="Gridline notify",
        version="1",
        description="Delivers notifications to chat groups, SMS and the local inbox.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    return app
