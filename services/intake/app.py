"""Intake's app factory: producer, Redis, its database and the routes, run by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from gridline.bus.output import event_output
from gridline.cache import RedisHandle
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.http import service_app
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.tasks_client import TasksClient
from services.intake import page, routes, storage
from services.intake.body_limits import PathBodyLimits
from services.intake.key_cache import CachedRegistry
from services.intake.ratelimit import TokenBucket
from services.intake.submission import Submitter

# Residents may send a few reports in a row (a family), then the hourly rate applies.
SELF_REPORT_BURST = 5


def signatures_required(settings: Settings) -> bool:
    """Whether unsigned report posts are refused: the setting, else only in production."""
    if settings.intake_require_signatures is not None:
        return settings.intake_require_signatures
    return settings.env == "production"


def create_app(settings: Settings) -> FastAPI:
    """Build intake's ASGI app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            Database(settings, "intake", storage.TABLES, storage.MIGRATIONS) as database,
            event_output(settings, database) as outbox,
            RedisHandle(settings) as redis,
            DirectoryClient(settings.directory_target) as directory,
            TasksClient(settings.tasks_target) as tasks,
        ):
            app.state.directory = directory
            app.state.tasks = tasks
            app.state.redis = redis.client
            app.state.integrators = CachedRegistry(
                database,
                settings.intake_api_key_secret.get_secret_value(),
                settings.intake_key_cache_seconds,
            )
            app.state.require_signatures = signatures_required(settings)
            app.state.rate_limit = TokenBucket(
                redis.client, "records", settings.intake_rate_per_second, settings.intake_rate_burst
            )
            app.state.self_report_limit = TokenBucket(
                redis.client,
                "self-report",
                settings.intake_self_report_per_hour / 3600,
                min(settings.intake_self_report_per_hour, SELF_REPORT_BURST),
            )
            app.state.producer = outbox.producer
            app.state.settings = settings
            app.state.submitter = Submitter(
                settings, outbox, redis.client, Sealer(settings.pii_key.get_secret_value())
            )
            app.state.readiness = {
                "broker": outbox.producer.is_connected,
                "redis": redis.ping,
                "database": database.ping,
            }
            yield

    app = service_app(
        title="Gridline intake",
        version="1",
        description="Arrival reports from health-code feeds, residents, cadres and checkpoints.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.include_router(page.router)
    app.add_exception_handler(RequestValidationError, routes.on_request_invalid)
    app.add_middleware(
        PathBodyLimits,
        max_bytes=settings.intake_max_body_bytes,
        batch_max_bytes=settings.intake_batch_max_body_bytes,
    )
    return app
