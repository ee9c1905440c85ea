"""What every service's HTTP server has: health, readiness, metrics and request metrics."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridline.logging import configure_logging, get_logger
from gridline.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from gridline.settings import ServiceName, Settings
from gridline.tracing import configure_tracing

_NO_NATIVE_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}

log = get_logger(__name__)

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

    app.state.stopping = False

    @app.get("/readyz", tags=["operations"], operation_id="readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        if app.state.stopping:
            # A load balancer stops sending work the moment shutdown begins.
            return JSONResponse({"status": "stopping", "checks": {}}, status_code=503)
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


class _BoundedServer(uvicorn.Server):
    """uvicorn that reports not ready from the first signal and exits within a bound after it.

    A dependency that is gone (a broker, a database) can make a graceful stop wait without end;
    at the bound the process exits at once. Nothing is lost by it: offsets are committed only
    after effects, and the outbox keeps what was not published, so what was cut short is redone
    after a restart and deduplicated.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI, bound: float) -> None:
        super().__init__(config)
        self._app = app
        self._bound = bound
        self._watchdog: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.stopping = True
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._exit_at_bound, daemon=True)
            self._watchdog.start()
        super().handle_exit(sig, frame)

    def _exit_at_bound(self) -> None:
        time.sleep(self._bound)
        waiting = REGISTRY.get_sample_value("gridline_outbox_pending_records") or 0
        log.error(
            "shutdown bound reached; exiting now",
            bound_seconds=self._bound,
            abandoned="the batch in hand (uncommitted, redone after a restart)",
            outbox_waiting=int(waiting),
        )
        logging.shutdown()
        os._exit(70)  # EX_SOFTWARE: not a clean stop, nothing committed is lost


def serve(app: FastAPI, host: str, port: int, shutdown_timeout: float = 10.0) -> None:
    """Run the app until SIGTERM or SIGINT, then let its lifespan shut everything down.

    The process exits at most `shutdown_timeout` seconds after the signal.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, int(shutdown_timeout / 2)),
    )
    _BoundedServer(config, app, shutdown_timeout).run()


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
        serve(app, settings.host, settings.http_port(service), settings.shutdown_timeout_seconds)
        return
    tracing.instrument_app(app)
    try:
        serve(app, settings.host, settings.http_port(service), settings.shutdown_timeout_seconds)
    finally:
        tracing.shutdown()
