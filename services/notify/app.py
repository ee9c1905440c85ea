"""Notify's app factory: the channels and the notifications consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.producer import EventProducer
from gridline.db import Database
from gridline.http import service_app
from gridline.settings import Settings
from services.notify import routes, storage
from services.notify.channels.base import Channel
from services.notify.channels.inbox import InboxChannel
from services.notify.channels.webhook import WebhookChannel
from services.notify.consumers import GROUP, notification_handler


def build_channels(settings: Settings) -> list[Channel]:
    """The channels the settings switch on."""
    channels: list[Channel] = []
    if settings.notify_inbox_enabled:
        channels.append(InboxChannel(settings.inbox_path))
    if settings.notify_webhook_url:
        channels.append(
            WebhookChannel(settings.notify_webhook_url, settings.notify_timeout_seconds)
        )
    return channels


def create_app(settings: Settings) -> FastAPI:
    """Build notify's ASGI app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        channels = build_channels(settings)
        try:
            async with (
                Database(settings, "notify", storage.TABLES) as db,
                EventProducer(settings) as producer,
                ConsumerRunner(
                    settings=settings,
                    topic=topics.NOTIFICATIONS,
                    group=GROUP,
                    handler=notification_handler(channels, producer),
                    db=db,
                    producer=producer,
                ) as runner,
            ):
                app.state.db = db
                app.state.readiness = {
                    "database": db.ping,
                    "broker": producer.is_connected,
                    "consumer": runner.alive,
                }
                yield
        finally:
            for channel in channels:
                await channel.close()

    app = service_app(
        title="Gridline notify",
        version="1",
        description="Delivers notifications to chat groups, SMS and the local inbox.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    return app
