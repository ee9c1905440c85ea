"""What every service's HTTP server has: health, readiness, metrics and request metrics, body
limits, client addresses through trusted proxies, and answers other than 500 to odd input and
to a Redis outage."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

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


# How long a client waits before trying again after a 503 for a dependency that is down.
RETRY_AFTER_SECONDS = 5


def service_app(
    *,
    title: str,
    version: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    max_body_bytes: int,
    description: str = "",
    body_limits: Mapping[str, int] | None = None,
    trusted_proxies: Sequence[str] = (),
) -> FastAPI:
    """A FastAPI app with `/healthz`, `/readyz` and `/metrics`.

    The lifespan stores its readiness checks in `app.state.readiness` (a ReadinessChecks).
    Bodies over `max_body_bytes` (or a path's own limit in `body_limits`) are refused with 413
    (`BodyLimits`); the client address comes from X-Forwarded-For only when the peer is one
    of the `trusted_proxies` (addresses or CIDR networks). Redis down is a 503 with
    Retry-After, input nested too deep a 400, and a refused body is answered 422 even when
    it holds numbers JSON cannot write (`1e400`, `NaN`), instead of a 500.
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

    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(RedisConnectionError, _redis_unavailable)
    app.add_exception_handler(RedisTimeoutError, _redis_unavailable)
    app.add_exception_handler(RecursionError, _nested_too_deep)
    app.add_middleware(RequestMetricsMiddleware)
    # Each added around the ones before: a body is refused before anything reads it, and the
    # address is the client's before any route or limit sees it.
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes, paths=body_limits or {})
    if trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted_proxies))
    return app


def problem(
    status_code: int, rule: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error answer: `detail` says what happened for people, `rule` names it for programs."""
    return JSONResponse(
        {"detail": detail, "rule": rule},
        status_code=status_code,
        headers=headers,
        media_type="application/problem+json",
    )


async def request_invalid(_: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 (`detail`: each field's `loc`, `msg`, `type`), written even when the input
    it echoes has no form in JSON or UTF-8: `1e400` reads as infinity, `"\\ud800"` as a lone
    surrogate."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": _writable(jsonable_encoder(error.errors()))}, status_code=422)


def _writable(value: Any) -> Any:
    """`value` with infinite and NaN floats as text and lone surrogates escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_writable(key): _writable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_writable(item) for item in value]
    return value


async def _redis_unavailable(_: Request, error: Exception) -> JSONResponse:
    log.warning("redis unavailable", error=type(error).__name__)
    return problem(
        503,
        "redis.unavailable",
        "暂时无法连接缓存服务（Redis），本次请求未被受理，请稍后重试",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _nested_too_deep(_: Request, error: Exception) -> JSONResponse:
    # Python's JSON reader recurses once per level: thousands of nested arrays exhaust it.
    return problem(400, "body.too_deep", "请求内容嵌套层级过深，无法读取")


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
        # The app decides whom to believe about the client's address (`trusted_proxies`).
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, int(shutdown_timeout / 2)),
    )
    _BoundedServer(config, app, shutdown_timeout).run()


class BodyLimits:
    """Refuses a request body over its limit with 413 before reading it whole.

    The limit is `max_bytes`, or the path's own in `paths` (a batch endpoint may take more).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, paths: Mapping[str, int]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = dict(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, send)
            return
        received = 0
        refused = answered = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise _BodyTooLarge
            return message

        async def refusing_send(message: Message) -> None:
            nonlocal answered
            # Whatever the app made of the cut-off body (FastAPI: "error parsing the body", or
            # a 500 for a route reading it itself), the answer is the 413.
            if not refused:
                await send(message)
            elif not answered:
                answered = True
                await _too_large(limit, send)

        try:
            await self.app(scope, limited_receive, refusing_send)
        except _BodyTooLarge:
            if not answered:
                await _too_large(limit, send)


async def _too_large(limit: int, send: Send) -> None:
    response = problem(
        413, "body.too_large", f"请求内容超过{limit}字节的上限，未予受理；内容较多时请分批提交"
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
