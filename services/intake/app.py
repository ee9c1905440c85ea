"""Intake's app factory: producer, Redis, its database and the routes, run by the lifespan."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from gridline.bus.retention import PersonalDataRetention
from gridline.cache import RedisHandle
from gridline.directory_client import DirectoryClient
from gridline.personal import Sealer
from gridline.service import ServiceRuntime, assembled_app
from gridline.settings import Settings
from gridline.staff.tokens import TokenVerifier
from gridline.tasks_client import TasksClient
from services.intake import page, retention, routes, storage
from services.intake.key_cache import CachedRegistry
from services.intake.ratelimit import TokenBucket
from services.intake.signing import SECURITY_SCHEMES
from services.intake.submission import Submitter

# The routes on the public surface (gridline.http.Surfaces): every other one is staff.
PUBLIC_PATHS = ("/report", "/v1/reports", "/v1/reports/{report_id}", routes.BATCH_PATH)

# Residents may send a few reports in a row (a family), then the hourly rate applies.
SELF_REPORT_BURST = 5


def signatures_required(settings: Settings) -> bool:
    """Whether unsigned report posts are refused: the setting, else only in production."""
    if settings.intake_require_signatures is not None:
        return settings.intake_require_signatures
    return settings.env == "production"


def create_app(settings: Settings) -> FastAPI:
    """Build intake's ASGI app."""

    async def assemble(service: ServiceRuntime) -> None:
        state, outbox = service.state, service.outbox
        redis = await service.open(RedisHandle(settings))
        service.ready("redis", redis.ping)
        state.directory = await service.open(
            DirectoryClient(settings.directory_target, tls=service.tls)
        )
        state.tasks = await service.open(TasksClient(settings.tasks_target, tls=service.tls))
        state.redis = redis.client
        state.integrators = CachedRegistry(
            service.db,
            settings.intake_api_key_secret.get_secret_value(),
            settings.intake_key_cache_seconds,
        )
        state.require_signatures = signatures_required(settings)
        state.rate_limit = TokenBucket(
            redis.client,
            "records",
            settings.intake_rate_per_second,
            settings.intake_rate_burst,
            linger=settings.intake_wave_linger_ms / 1000,
            most=settings.intake_wave_reports,
        )
        state.self_report_limit = TokenBucket(
            redis.client,
            "self-report",
            settings.intake_self_report_per_hour / 3600,
            min(settings.intake_self_report_per_hour, SELF_REPORT_BURST),
        )
        state.producer = outbox.producer
        state.settings = settings
        # Staff routes (a cadre's report from the workbench) check the person's token.
        state.staff_tokens = await service.open(TokenVerifier.from_settings(settings))
        state.submitter = Submitter(settings, outbox, redis.client, Sealer.from_settings(settings))
        await service.run(
            "personal data retention",
            PersonalDataRetention(service.db, settings, retention.PERSONAL_DATA),
        )

    app = assembled_app(
        settings,
        "intake",
        storage,
        description="Arrival reports from health-code feeds, residents, cadres and checkpoints.",
        assemble=assemble,
        routers=[routes.router, page.router],
        # Residents' page and the integrator API; docs, health and metrics are for staff.
        public_paths=PUBLIC_PATHS,
        max_body_bytes=settings.intake_max_body_bytes,
        body_limits={routes.BATCH_PATH: settings.intake_batch_max_body_bytes},
    )
    app.add_exception_handler(RequestValidationError, routes.on_request_invalid)
    _document_signing(app, signatures_required(settings))
    return app


def _document_signing(app: FastAPI, required: bool) -> None:
    """Declare the X-Gridline-* headers in the OpenAPI document, so generated clients sign.

    The four are one security requirement (all sent together) on the operations that check
    them; where unsigned posts are allowed (`required` false), no credentials at all is
    another alternative, as the server answers. Schemes and requirements declared otherwise
    (by dependencies) are kept beside them.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            components = document.setdefault("components", {})
            components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
            signed: dict[str, list[str]] = {name: [] for name in SECURITY_SCHEMES}
            security = [signed] if required else [signed, {}]
            for path in document["paths"].values():
                for operation in path.values():
                    if operation.get("operationId") in routes.SIGNED_OPERATIONS:
                        operation["security"] = [*operation.get("security", []), *security]
            app.openapi_schema = document
        return app.openapi_schema

    # FastAPI's documented way to change the document: replace the method that builds it.
    app.openapi = openapi  # type: ignore[method-assign]
