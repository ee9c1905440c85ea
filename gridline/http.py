"""What every service's HTTP server has: health, readiness, metrics and request metrics, body
limits, client addresses through trusted proxies, answers other than 500 to odd input and to a
Redis outage, every error as a problem (`gridline.problems`), and two surfaces.

The public surface (task pages, the self-report page, the integrator API, vendor callbacks) and
the staff surface (staff and admin APIs, `/healthz`, `/readyz`, `/metrics`, the API docs) are
served by one app on two listeners once a staff port is set: each listener answers only the
routes of its surface (`SurfaceGate`). Without a staff port one listener serves both, as in
development on loopback.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gridline import problems
from gridline.logging import configure_logging, get_logger
from gridline.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from gridline.problems import TOO_DEEP, TOO_DEEP_DETAIL, instance_of, not_found, problem
from gridline.production import ProductionRefused, refuse_unsafe_production
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

# Which listener serves a route: the public one (people, integrators, vendors) or the staff one.
Surface = Literal["public", "staff"]


class Surfaces:
    """Which of an app's routes are public; every other route is on the staff surface.

    `public` holds route paths as declared (`/v1/reports/{report_id}`) and prefixes ending in
    `/` (`/t/`). A route named nowhere is staff, so a new route is never public by mistake.
    """

    def __init__(self, public: Iterable[str] = ()) -> None:
        self.public = tuple(public)

    def of(self, path: str) -> Surface:
        """The surface of the route declared at `path`."""
        return "public" if any(_names(entry, path) for entry in self.public) else "staff"

    def routes(self, app: FastAPI, surface: Surface) -> list[RouteContext]:
        """The app's routes on `surface` (each with its full `path` and its `methods`)."""
        return [
            route
            for route in iter_route_contexts(app.routes)
            if self.of(route.path or "") == surface
        ]

    def unmatched(self, app: FastAPI) -> list[str]:
        """The public entries naming no route of `app` (a typo would leave a route staff)."""
        paths = [route.path or "" for route in iter_route_contexts(app.routes)]
        return [entry for entry in self.public if not any(_names(entry, p) for p in paths)]


def _names(entry: str, path: str) -> bool:
    """Whether a public entry (a route path, or a prefix ending in `/`) names `path`."""
    return path == entry or (entry.endswith("/") and path.startswith(entry))


def service_app(
    *,
    title: str,
    version: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    max_body_bytes: int,
    description: str = "",
    body_limits: Mapping[str, int] | None = None,
    trusted_proxies: Sequence[str] = (),
    public_paths: Iterable[str] = (),
) -> FastAPI:
    """A FastAPI app with `/healthz`, `/readyz` and `/metrics`.

    `public_paths` names the routes of the public surface (see `Surfaces`), kept in
    `app.state.surfaces`; the operations endpoints are on the staff surface.

    The lifespan stores its readiness checks in `app.state.readiness` (a ReadinessChecks).
    Bodies over `max_body_bytes` (or a path's own limit in `body_limits`) are refused with 413
    (`BodyLimits`); the client address comes from X-Forwarded-For only when the peer is one
    of the `trusted_proxies` (addresses or CIDR networks). Redis down is a 503 with
    Retry-After, input nested too deep a 400, and a refused body is answered 422 even when
    it holds numbers JSON cannot write (`1e400`, `NaN`), instead of a 500. Every error is an
    RFC 9457 problem naming its rule (`gridline.problems`, docs/errors.md).
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
    app.state.surfaces = Surfaces(public_paths)

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

    # Every error a problem (RFC 9457): gridline.problems.
    problems.install(app)
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


async def _redis_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("redis unavailable", error=type(error).__name__)
    return problem(
        503,
        "redis.unavailable",
        "暂时无法连接缓存服务（Redis），本次请求未被受理，请稍后重试",
        instance=instance_of(request.scope),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _nested_too_deep(request: Request, error: Exception) -> JSONResponse:
    # Python's JSON reader recurses once per level: thousands of nested arrays exhaust it.
    return problem(400, TOO_DEEP, TOO_DEEP_DETAIL, instance=instance_of(request.scope))


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

    def __init__(
        self, config: uvicorn.Config, app: FastAPI, bound: float, *, freeze: bool = False
    ) -> None:
        super().__init__(config)
        self._app = app
        self._bound = bound
        self._freeze = freeze
        self._watchdog: threading.Thread | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start the app; with `freeze`, then leave what it built out of full collections."""
        await super().startup(sockets=sockets)
        if self._freeze:
            # The modules, mappers, schemas and clients built so far live as long as the
            # process. Each full collection walked them all again: pauses of 20-170 ms, a
            # consumer's slowest batches. The startup's garbage (migrations) goes first, or it
            # would be kept for good.
            gc.collect()
            gc.freeze()

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


@dataclass(frozen=True)
class Listener:
    """An address a service's HTTP server listens on and the surface it serves there (None:
    every route, when one listener serves both)."""

    host: str
    port: int
    surface: Surface | None = None


def service_listeners(
    settings: Settings, service: ServiceName, *, has_public_routes: bool
) -> list[Listener]:
    """Where `service` listens: with a staff port, a public listener (only if it has public
    routes) and a staff one; without, one listener for every route."""
    staff_port = settings.staff_http_port(service)
    if staff_port is None:
        return [Listener(settings.host, settings.http_port(service))]
    staff = Listener(settings.staff_host or settings.host, staff_port, "staff")
    if not has_public_routes:
        return [staff]
    return [Listener(settings.host, settings.http_port(service), "public"), staff]


class SurfaceGate:
    """Lets a request reach only the routes of the surface its listener serves.

    The listener is told by the local port the connection came in on (`ports`). A port no
    listener was declared for, a path that is no route, or a route of the other surface is
    answered 404, as a path nobody serves would be: the public listener does not even reveal
    that a staff route exists (no 405, no redirect to it).
    """

    def __init__(self, app: FastAPI, ports: Mapping[int, Surface]) -> None:
        self.app = app
        self.ports = dict(ports)
        surfaces: Surfaces = app.state.surfaces
        # In the router's order, as it picks: the first route matching path and method, else
        # the first matching the path alone (which the router answers 405).
        self._routes = [
            (route.path_regex, route.methods, surfaces.of(route.path or ""))
            for route in iter_route_contexts(app.routes)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = scope.get("server")
        listener = self.ports.get(server[1]) if server else None
        if listener is None or self._surface(scope["path"], scope["method"]) != listener:
            await not_found(scope)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _surface(self, path: str, method: str) -> Surface | None:
        """The surface of the route the app would take the request to; None: no route."""
        by_path = None
        for regex, methods, surface in self._routes:
            if regex.match(path):
                if methods is None or method in methods:
                    return surface
                by_path = by_path or surface
        return by_path


def serve(app: FastAPI, listeners: Sequence[Listener], shutdown_timeout: float = 10.0) -> None:
    """Run the app on its listeners until SIGTERM or SIGINT, then let its lifespan shut
    everything down; a listener with a surface serves only that surface's routes.

    The process exits at most `shutdown_timeout` seconds after the signal.
    """
    server, sockets = serving(app, listeners, shutdown_timeout, freeze=True)
    server.run(sockets=sockets)


def serving(
    app: FastAPI,
    listeners: Sequence[Listener],
    shutdown_timeout: float = 10.0,
    *,
    freeze: bool = False,
) -> tuple[uvicorn.Server, list[socket.socket]]:
    """The server `serve` runs and its sockets, bound to the listeners' addresses (port 0: any
    free one) but not yet accepting: `server.serve(sockets=sockets)` runs it. With `freeze`
    (a service's own process), what the app built by the end of its startup is left out of the
    garbage collector's passes (`gc.freeze`)."""
    sockets = [_bound(app, listener) for listener in listeners]
    asgi: ASGIApp = app
    if any(listener.surface for listener in listeners):
        # The bound port, not the configured one: port 0 takes any free port.
        ports = {
            sock.getsockname()[1]: listener.surface
            for sock, listener in zip(sockets, listeners, strict=True)
            if listener.surface is not None
        }
        asgi = SurfaceGate(app, ports)
    config = uvicorn.Config(
        asgi,
        log_config=None,
        access_log=False,
        # The app decides whom to believe about the client's address (`trusted_proxies`).
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, int(shutdown_timeout / 2)),
    )
    log.info(
        "listening",
        listeners=[
            f"{listener.surface or 'every route'} on {sock.getsockname()[0]}:"
            f"{sock.getsockname()[1]}"
            for sock, listener in zip(sockets, listeners, strict=True)
        ],
    )
    return _BoundedServer(config, app, shutdown_timeout, freeze=freeze), sockets


def _bound(app: FastAPI, listener: Listener) -> socket.socket:
    """A socket bound to the listener's address; it accepts connections only once the app has
    started (uvicorn listens after the lifespan's startup)."""
    return uvicorn.Config(app, host=listener.host, port=listener.port).bind_socket()


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
            await _too_large(limit, scope, send)
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
                await _too_large(limit, scope, send)

        try:
            await self.app(scope, limited_receive, refusing_send)
        except _BodyTooLarge:
            if not answered:
                await _too_large(limit, scope, send)


async def _too_large(limit: int, scope: Scope, send: Send) -> None:
    response = problem(
        413,
        "body.too_large",
        f"请求内容超过{limit}字节的上限，未予受理；内容较多时请分批提交",
        instance=instance_of(scope),
    )
    await response({"type": "http"}, _no_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def run_service(service: ServiceName, create_app: Callable[[Settings], FastAPI]) -> None:
    """The `python -m services.<name>` entry point: settings, logging, tracing, then serve.

    In production a service with unsafe settings exits before it serves, listing every problem.
    """
    settings = Settings()
    configure_logging(settings, service)
    tracing = configure_tracing(settings, service)
    try:
        app = create_app(settings)
        has_public_routes = bool(app.state.surfaces.routes(app, "public"))
        try:
            refuse_unsafe_production(settings, service, has_public_routes=has_public_routes)
        except ProductionRefused as refused:
            log.error("refusing to start", problems=refused.problems)
            raise SystemExit(str(refused)) from None
        if tracing is not None:
            tracing.instrument_app(app)
        listeners = service_listeners(settings, service, has_public_routes=has_public_routes)
        serve(app, listeners, settings.shutdown_timeout_seconds)
    finally:
        if tracing is not None:
            tracing.shutdown()
