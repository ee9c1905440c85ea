"""Escalation's app factory: the tasks consumer, the deadline loop and the routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.producer import EventProducer
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.http import service_app
from gridline.settings import Settings
from services.escalation import routes, storage
from services.escalation.consumers import GROUP, task_handler
from services.escalation.deadlines import run_deadlines


def create_app(settings: Settings) -> FastAPI:
    """Build escalation's ASGI app."""
    ack_deadline = timedelta(seconds=settings.ack_deadline_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings, "escalation", storage.TABLES)
        await db.create_tables()
        producer = EventProducer(settings)
        await producer.start()
        directory = DirectoryClient(settings.directory_target)
        runner = ConsumerRunner(
            settings=settings,
            topic=topics.TASKS,
            group=GROUP,
            handler=task_handler(ack_deadline, settings.public_base_url),
            db=db,
            producer=producer,
        )
        stopping = asyncio.Event()
        workers = [
            asyncio.create_task(runner.run(), name="tasks-consumer"),
            asyncio.create_task(
                run_deadlines(
                    db,
                    directory,
                    producer,
                    ack_deadline,
                    settings.escalation_tick_seconds,
                    stopping,
                ),
                name="deadlines",
            ),
        ]

        async def workers_alive() -> bool:
            return runner.started.is_set() and not any(w.done() for w in workers)

        app.state.db = db
        app.state.producer = producer
        app.state.readiness = {
            "database": db.ping,
            "broker": producer.is_connected,
            "workers": workers_alive,
        }
        try:
            yield
        finally:
            runner.stop()
            stopping.set()
            await asyncio.gather(*workers, return_exceptions=True)
            await directory.close()
            await producer.stop()
            await db.dispose()

    app = service_app(
        title="Gridline escalation",
        version="1",
        description="Tasks, their deadlines and escalations up the chain.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    return app
