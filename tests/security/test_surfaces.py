"""Two surfaces: every route of every service is on exactly one, and a listener answers only
the routes of its own. Built from the apps the services' code assembles, so a new route is
checked too (staff unless declared public)."""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import Receive, Scope, Send

from gridline.http import Listener, SurfaceGate, service_app, service_listeners, serving
from gridline.service import assembled_app
from gridline.settings import SERVICES, ServiceName, Settings
from services.notify import routes as notify_routes
from services.notify import storage as notify_storage
from tests.helpers import eventually

# The public surface of each service, as people, integrators and vendors reach it.
PUBLIC = {
    "intake": {
        ("GET", "/report"),
        ("POST", "/report"),
        ("POST", "/v1/reports"),
        ("GET", "/v1/reports/{report_id}"),
        ("POST", "/v1/reports:batch"),
    },
    "assignment": set(),
    "escalation": {
        ("GET", "/t/{task_id}"),
        ("POST", "/t/{task_id}/check-in"),
        ("POST", "/t/{task_id}/{action}"),
        ("POST", "/v1/check-ins:sms"),
    },
    "notify": set(),
}
OPERATIONS = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"}
PUBLIC_PORT, STAFF_PORT = 8000, 9000


def _app(service: ServiceName) -> FastAPI:
    app: FastAPI = importlib.import_module(f"services.{service}.app").create_app(Settings())
    return app


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, route.path or "")
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
        if method != "HEAD"
    }


@pytest.mark.parametrize("service", SERVICES)
def test_the_public_surface_is_exactly_the_declared_routes(service: ServiceName) -> None:
    app = _app(service)
    surfaces = app.state.surfaces
    public = {
        (method, route.path)
        for route in surfaces.routes(app, "public")
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert public == PUBLIC[service]
    staff = {(m, route.path) for route in surfaces.routes(app, "staff") for m in route.methods}
    # Every route is on exactly one surface; health, metrics and the API docs are staff.
    assert not {(m, p) for m, p in staff if m != "HEAD"} & public
    assert {(m, p) for m, p in staff if m != "HEAD"} | public == _routes(app)
    assert {path for _, path in staff} >= OPERATIONS


@asynccontextmanager
async def _gated(service: ServiceName) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """The service's gate on its real route table, in front of a stand-in that records what
    reaches it (no database or broker needed)."""
    gate = SurfaceGate(_app(service), {PUBLIC_PORT: "public", STAFF_PORT: "staff"})
    reached: list[str] = []

    async def stand_in(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gate.app = stand_in  # type: ignore[assignment]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate)) as http:
        yield http, reached


@pytest.mark.parametrize("service", SERVICES)
async def test_a_listener_answers_only_its_own_surfaces_routes(service: ServiceName) -> None:
    app = _app(service)
    direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")
    async with _gated(service) as (http, reached), direct:
        # The app's own answer to a path no route serves.
        nowhere = await direct.get("/nowhere")
        assert nowhere.status_code == 404
        assert nowhere.headers["Content-Type"] == "application/problem+json"
        for method, path in sorted(_routes(app)):
            sample = re.sub(r"\{[^}]+\}", "x", path)
            own, other = (
                (PUBLIC_PORT, STAFF_PORT) if (method, path) in PUBLIC[service]
                else (STAFF_PORT, PUBLIC_PORT)
            )  # fmt: skip
            answered = await http.request(method, f"http://svc:{own}{sample}")
            assert answered.status_code == 299, (method, path)
            refused = await http.request(method, f"http://svc:{other}{sample}")
            # As if nothing were there: not 401, not 405, not a redirect; the very answer of a
            # path no route serves.
            assert refused.status_code == 404
            assert refused.headers["Content-Type"] == "application/problem+json"
            assert refused.json() == {**nowhere.json(), "instance": sample}
        assert len(reached) == len(_routes(app))
        reached.clear()
        # Nothing is served on a port no listener was declared for, or off the routes.
        for url in (f"http://svc:8080{sample}", f"http://svc:{STAFF_PORT}/nowhere"):
            assert (await http.get(url)).status_code == 404
        assert not reached


async def test_two_listeners_over_real_sockets() -> None:
    """The gate tells the listeners apart by the port a connection came in on, as uvicorn
    serves them: staff routes and health on one, public routes on the other."""
    router = APIRouter()

    @router.get("/t/{task_id}")
    async def page(task_id: str) -> dict[str, str]:
        return {"task": task_id}

    @router.post("/v1/tasks/{task_id}:close")
    async def close(task_id: str) -> dict[str, str]:
        return {"closed": task_id}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = service_app(
        title="t", version="1", lifespan=lifespan, max_body_bytes=1000, public_paths=["/t/"]
    )
    app.include_router(router)
    listeners = [Listener("127.0.0.1", 0, "public"), Listener("127.0.0.1", 0, "staff")]
    server, sockets = serving(app, listeners)
    public, staff = (f"http://127.0.0.1:{s.getsockname()[1]}" for s in sockets)
    running = asyncio.create_task(server.serve(sockets=sockets))
    try:
        await eventually(_started(server))
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{public}/t/7")).json() == {"task": "7"}
            assert (await http.get(f"{staff}/t/7")).status_code == 404
            assert (await http.post(f"{staff}/v1/tasks/7:close")).json() == {"closed": "7"}
            assert (await http.post(f"{public}/v1/tasks/7:close")).status_code == 404
            assert (await http.get(f"{public}/v1/tasks/7:close")).status_code == 404
            assert (await http.get(f"{staff}/readyz")).status_code in (200, 503)
            for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
                assert (await http.get(f"{public}{path}")).status_code == 404, path
    finally:
        server.should_exit = True
        await running


def _started(server: uvicorn.Server) -> Callable[[], Awaitable[bool]]:
    async def started() -> bool:
        return server.started

    return started


def test_listeners_follow_the_settings() -> None:
    shared = Settings(escalation_http_port=8003)
    assert service_listeners(shared, "escalation", has_public_routes=True) == [
        Listener("127.0.0.1", 8003, None)
    ]
    split = Settings(host="0.0.0.0", staff_host="10.0.0.5", escalation_staff_http_port=9003)
    assert service_listeners(split, "escalation", has_public_routes=True) == [
        Listener("0.0.0.0", 8003, "public"),
        Listener("10.0.0.5", 9003, "staff"),
    ]
    # No public routes: no public listener at all.
    assert service_listeners(
        Settings(notify_staff_http_port=9004), "notify", has_public_routes=False
    ) == [Listener("127.0.0.1", 9004, "staff")]
    with pytest.raises(ValueError, match="must differ"):
        Settings(intake_staff_http_port=8001)


def test_a_public_path_naming_no_route_stops_the_build() -> None:
    async def assemble(_: object) -> None:
        return None

    with pytest.raises(ValueError, match="public paths naming no route: /v1/notification/"):
        assembled_app(
            Settings(),
            "notify",
            notify_storage,
            description="",
            assemble=assemble,
            routers=[notify_routes.router],
            public_paths=["/v1/notification/"],
        )
