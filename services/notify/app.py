"""Notify's app factory: the channels, the groups file and the notifications consumer."""

from __future__ import annotations

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.retention import PersonalDataRetention
from gridline.cache import RedisHandle
from gridline.contracts.v1 import notify_pb2, notify_pb2_grpc
from gridline.service import ServiceRuntime, assembled_app
from gridline.settings import Settings
from gridline.staff.tokens import TokenVerifier
from services.notify import retention, routes, storage
from services.notify.budget import RobotBudget
from services.notify.consumers import (
    GROUP,
    Deliverer,
    RetryPolicy,
    notification_batch_handler,
)
from services.notify.digests import Digester
from services.notify.link_origin import TaskPageOrigin
from services.notify.routing import build_router
from services.notify.servicer import NotifyServicer


def create_app(settings: Settings) -> FastAPI:
    """Build notify's ASGI app."""
    # A bad groups file stops the start with its error, before anything is opened.
    router = build_router(settings)

    async def assemble(service: ServiceRuntime) -> None:
        await service.open(router)  # its channels' connections close when the service stops
        redis = await service.open(RedisHandle(settings))
        service.ready("redis", redis.ping)
        deliverer = Deliverer(
            router,
            service.db,
            RetryPolicy.from_settings(settings),
            RobotBudget(redis.client),
            settings.notify_concurrency,
        )
        await service.open(Digester(deliverer, service.db))
        await service.run(
            "personal data retention",
            PersonalDataRetention(service.db, settings, retention.PERSONAL_DATA),
        )
        await service.consume(
            "consumer",
            topic=topics.NOTIFICATIONS,
            group=GROUP,
            batch_handler=notification_batch_handler(
                deliverer, TaskPageOrigin(settings.public_base_url)
            ),
        )
        # Delivery status is for staff, over HTTP and gRPC alike (gridline.staff).
        staff_tokens = await service.open(TokenVerifier.from_settings(settings))
        service.state.staff_tokens = staff_tokens
        await service.serve(
            settings.notify_grpc_port,
            notify_pb2_grpc.add_NotifyServicer_to_server,
            NotifyServicer(service.db, staff_tokens),
            notify_pb2.DESCRIPTOR.services_by_name["Notify"],
        )

    return assembled_app(
        settings,
        "notify",
        storage,
        description="Delivers notifications to chat groups, SMS and the local inbox.",
        assemble=assemble,
        routers=[routes.router],
    )
