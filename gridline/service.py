"""How every service is put together: its database, its event output, then its own parts.

A service's `app.py` builds its app with `assembled_app(...)`, giving the routers, which of
their routes are public (every other one is staff: `gridline.http.Surfaces`) and an
`assemble` step that adds what is the service's own, in the order it needs them: clients of
other services, consumers, periodic workers, gRPC servers. Everything is closed in the reverse
order when the lifespan ends, so consumers, workers and servers stop before the outbox publishes
what they committed last, and the database closes last. Each part that can fail while the
process runs joins `/readyz` under its name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc
from fastapi import APIRouter, FastAPI
from sqlalchemy import Table

from gridline.bus.consumer import Accepts, BatchHandler, ConsumerRunner, Handler, Prepare
from gridline.bus.outbox import Outbox
from gridline.bus.output import event_output
from gridline.db import Database
from gridline.http import service_app
from gridline.rpc import RpcServer, TlsIdentity
from gridline.settings import ServiceName, Settings

PartT = TypeVar("PartT")
LiveT = TypeVar("LiveT", bound="Live")
ServicerT = TypeVar("ServicerT")


class Live(Protocol):
    """A part that runs in the background and says whether it still does."""

    async def alive(self) -> bool:
        """Whether the part is running."""
        ...


class Storage(Protocol):
    """A service's storage module: its tables and its Alembic revisions (module constants)."""

    @property
    def TABLES(self) -> Sequence[Table]:
        """Every table of the service, the ledger's and the outbox's included."""
        ...

    @property
    def MIGRATIONS(self) -> Path:
        """The folder of the service's revisions."""
        ...


class ServiceRuntime:
    """A service's open database and outbox, and the parts it adds while its lifespan starts."""

    def __init__(
        self,
        app: FastAPI,
        settings: Settings,
        service: ServiceName,
        db: Database,
        outbox: Outbox,
        stack: AsyncExitStack,
    ) -> None:
        self.settings = settings
        self.service = service
        # This service's gRPC identity (None: plaintext), for its servers and its clients.
        self.tls = TlsIdentity.from_settings(settings)
        self.db = db
        self.outbox = outbox
        # The app's state, where routes find what the service opened (`request.app.state`).
        self.state = app.state
        self._stack = stack
        # The app's readiness checks, by the names dashboards and probes know them by.
        self.readiness: dict[str, Callable[[], Awaitable[bool]]] = {
            "database": db.ping,
            "broker": outbox.producer.is_connected,
            "outbox": outbox.alive,
        }

    async def open(self, part: AbstractAsyncContextManager[PartT]) -> PartT:
        """Enter `part` until the service stops (a client of another service, say)."""
        return await self._stack.enter_async_context(part)

    def ready(self, name: str, check: Callable[[], Awaitable[bool]]) -> None:
        """Add a readiness check under `name`."""
        self.readiness[name] = check

    async def run(self, name: str, part: AbstractAsyncContextManager[LiveT]) -> LiveT:
        """Enter a background part until the service stops; it is ready while it runs."""
        running = await self.open(part)
        self.ready(name, running.alive)
        return running

    async def consume(
        self,
        name: str,
        *,
        topic: str,
        group: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        accepts: Accepts | None = None,
        prepare: Prepare | None = None,
    ) -> ConsumerRunner:
        """Run a consumer of `topic` in `group` on the service's database (see ConsumerRunner)."""
        runner = ConsumerRunner(
            settings=self.settings,
            topic=topic,
            group=group,
            db=self.db,
            handler=handler,
            batch_handler=batch_handler,
            accepts=accepts,
            prepare=prepare,
        )
        return await self.run(name, runner)

    async def serve(
        self,
        port: int,
        register: Callable[[ServicerT, grpc.aio.Server], None],
        servicer: ServicerT,
        service: Any,
    ) -> None:
        """Serve one gRPC service on `port` until the service stops (see `RpcServer.serving`).

        It binds the staff address; under mutual TLS (`self.tls`) only the peers in the
        service's `grpc_clients` setting may call it, if that names any.
        """
        settings = self.settings
        server = RpcServer.serving(
            settings.staff_host or settings.host,
            port,
            register,
            servicer,
            service,
            tls=self.tls,
            clients=settings.grpc_clients(self.service),
            reflection=settings.grpc_reflection_on,
        )
        await self.open(server)


# Adds a service's own parts to its runtime, in the order they start.
Assemble = Callable[[ServiceRuntime], Awaitable[None]]


def assembled_app(
    settings: Settings,
    service: ServiceName,
    storage: Storage,
    *,
    description: str,
    assemble: Assemble,
    routers: Sequence[APIRouter],
    public_paths: Iterable[str] = (),
    max_body_bytes: int | None = None,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """A service's app: its routers beside `/healthz`, `/readyz` and `/metrics`, and a lifespan.

    `public_paths` names the routes of the public surface (route paths, or prefixes ending in
    `/`); the others are on the staff surface. Each must name a route: a typo fails here.

    The lifespan opens the service's database (migrated to its newest revision) and its event
    output, then lets `assemble` add the service's own parts; the app takes requests once they
    have all started. `app.state.db` is the database and `app.state.readiness` the checks.
    Request bodies are limited to `max_body_bytes` (default `GRIDLINE_MAX_BODY_BYTES`), or a
    path's own limit in `body_limits`; client addresses follow `GRIDLINE_TRUSTED_PROXIES`.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            db = await stack.enter_async_context(
                Database(settings, service, storage.TABLES, storage.MIGRATIONS)
            )
            outbox = await stack.enter_async_context(event_output(settings, db))
            runtime = ServiceRuntime(app, settings, service, db, outbox, stack)
            await assemble(runtime)
            app.state.db = db
            app.state.readiness = runtime.readiness
            yield

    app = service_app(
        title=f"Gridline {service}",
        version="1",
        description=description,
        lifespan=lifespan,
        max_body_bytes=max_body_bytes or settings.max_body_bytes,
        body_limits=body_limits,
        trusted_proxies=settings.trusted_proxy_networks,
        public_paths=public_paths,
    )
    for router in routers:
        app.include_router(router)
    unmatched = app.state.surfaces.unmatched(app)
    if unmatched:
        raise ValueError(f"{service}: public paths naming no route: {', '.join(unmatched)}")
    return app
