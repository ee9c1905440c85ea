"""Escalation's app factory: the tasks consumer, the deadline watcher and the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.output import event_output
from gridline.contracts.v1 import tasks_pb2, tasks_pb2_grpc
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.http import service_app
from gridline.links import PageLinks
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.escalation import page, routes, storage
from services.escalation.check_ins import load_rules
from services.escalation.consumers import GROUP, accepts, task_handler
from services.escalation.deadlines import DeadlineWatcher
from services.escalation.policy import load_policy
from services.escalation.roster import DirectoryRoster
from services.escalation.servicer import TasksServicer
from services.escalation.zero_report_flows import ZeroReportWatcher
from services.escalation.zero_reports import Schedule


def create_app(settings: Settings) -> FastAPI:
    """Build escalation's ASGI app."""
    # Validated here so that a faulty file stops the start with a clear message.
    links = PageLinks.from_settings(settings)
    check_ins = load_rules(settings.escalation_check_ins_file)
    schedule = Schedule(
        settings.zero_report_due_time,
        timedelta(minutes=settings.zero_report_township_delay_minutes),
    )
    policy = load_policy(
        settings.escalation_deadlines_file, timedelta(seconds=settings.ack_deadline_seconds)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            Database(settings, "escalation", storage.TABLES, storage.MIGRATIONS) as db,
            # Before the consumer, the watchers and the servers that stage events, so that they
            # stop first and the outbox then publishes what they committed last.
            event_output(settings, db) as outbox,
            DirectoryClient(settings.directory_target) as directory,
            ConsumerRunner(
                settings=settings,
                topic=topics.TASKS,
                group=GROUP,
                handler=task_handler(policy, links),
                accepts=accepts,
                db=db,
            ) as runner,
            DeadlineWatcher(
                db,
                directory.chain,
                policy,
                settings.escalation_tick_seconds,
                check_ins=check_ins,
            ) as deadlines,
            ZeroReportWatcher(
                db,
                DirectoryRoster(directory),
                schedule,
                settings.escalation_tick_seconds,
            ) as zero_reports,
            RpcServer(
                settings.host,
                settings.tasks_grpc_port,
                [
                    lambda server: tasks_pb2_grpc.add_TasksServicer_to_server(
                        TasksServicer(db, policy, check_ins), server
                    )
                ],
                [tasks_pb2.DESCRIPTOR.services_by_name["Tasks"].full_name],
            ),
        ):
            app.state.db = db
            app.state.policy = policy
            app.state.links = links
            app.state.check_ins = check_ins
            app.state.chain_of = directory.chain
            app.state.schedule = schedule
            app.state.readiness = {
                "database": db.ping,
                "broker": outbox.producer.is_connected,
                "outbox": outbox.alive,
                "consumer": runner.alive,
                "deadlines": deadlines.alive,
                "zero_reports": zero_reports.alive,
            }
            yield

    app = service_app(
        title="Gridline escalation",
        version="1",
        description="Tasks, their deadlines and escalations up the chain.",
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.include_router(page.router)
    return app
