"""Intake's app factory: the producer, Redis and the routes, started and stopped by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridline.bus.producer import EventProducer
from gridline.cache import RedisHandle
from gridline.http import BodySizeLimitMiddleware, service_app
from gridline.personal import Sealer
from gridline.settings import Settings
from services.intake import routes


def create_app(settings: Settings) -> FastAPI:
    """Build intake's ASGI app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with EventProducer(settings) as producer, RedisHandle(settings) as redis:
            app.state.redis = redis.client
            app.state.producer = producer
            app.state.settings = settings
            app.state.sealer = Sealer(settings.pii_key.get_secret_value())
            app.state.readiness = {"broker": producer.is_connected, "redis": redis.ping}
            yield

    app = service_app(
        title="Gridline intake",
        version="1",
        description="Arrival reports from health-code feeds, residents, cadres and checkpoints.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.intake_max_body_bytes)
    return app
