"""What every service's HTTP server has: health, readiness, metrics and request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridline.logging import configure_logging
from gridline.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from gridline.settings import ServiceName, Settings
from gridline.tracing import configure_tracing

_NO_NATIVE_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}

# A readiness check: a name and an async probe answering whether that dependency is usable.
ReadinessChecks = Mapping[str, Callable[[], Awaitable[bool]]]


def service_app(
    *,
    title: str,
    version: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    description: str = "",
) -> FastAPI:
    """A FastAPI app with `/healthz`, `/readyz` and `/metrics`.

    The lifespan stores its readiness checks in `app.state.readiness` (a ReadinessChecks).
    """
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        # OpenTelemetry's FastAPI instrumentation traces requests (gridline.tracing); FastAPI's
        # own telemetry would add a second set of spans and per-request work.
        telemetry=_NO_NATIVE_TELEMETRY,
    )
    app.state.readiness = {}

    @app.get("/healthz", tags=["operations"], operation_id="healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], operation_id="readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks: ReadinessChecks = app.state.readiness
        results = {name: await probe() for name, probe in checks.items()}
        ready = bool(results) and all(results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], operation_id="metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestMetricsMiddleware)
    return app


class RequestMetricsMiddleware:
    """Counts and times requests by route template (not raw path, to bound label values)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(template, method, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(template, method).observe(time.perf_counter() - started)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run the app until SIGTERM or SIGINT, then let its lifespan shut everything down."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=10
    )
    uvicorn.Server(config).run()


class BodySizeLimitMiddleware:
    """Refuses bodies over a limit with 413 before reading them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            if refused:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body is larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def run_service(service: ServiceName, create_app: Callable[[Settings], FastAPI]) -> None:
    """The `python -m services.<name>` entry point: settings, logging, tracing, then serve."""
    settings = Settings()
    configure_logging(settings, service)
    tracing = configure_tracing(settings, service)
    app = create_app(settings)
    if tracing is None:
        serve(app, settings.host, settings.http_port(service))
        return
    tracing.instrument_app(app)
    try:
        serve(app, settings.host, settings.http_port(service))
    finally:
        tracing.shutdown()
