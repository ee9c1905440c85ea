"""Escalation's app factory: the tasks consumer, the deadline watcher and the routes."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.retention import PersonalDataRetention
from gridline.contracts.v1 import tasks_pb2, tasks_pb2_grpc
from gridline.directory_client import DirectoryClient
from gridline.links import PageLinks
from gridline.service import ServiceRuntime, assembled_app
from gridline.settings import Settings
from gridline.staff.tokens import TokenVerifier
from services.escalation import page, retention, routes, storage, visit_routes
from services.escalation.check_ins import load_rules
from services.escalation.consumers import GROUP, accepts, task_handler
from services.escalation.deadlines import DeadlineWatcher
from services.escalation.policy import load_policy
from services.escalation.roster import DirectoryRoster
from services.escalation.servicer import TasksServicer
from services.escalation.visit_flows import DirectoryHouseholds, RoundWatcher
from services.escalation.workbench import forms, picture, register, sign_in, tasks, triage
from services.escalation.workbench.names import NodeNames
from services.escalation.zero_report_flows import ZeroReportWatcher
from services.escalation.zero_reports import Schedule

# The routes on the public surface (gridline.http.Surfaces): the task pages behind their signed
# links and the SMS gateway's check-in webhook. Every other route is staff.
PUBLIC_PATHS = ("/t/", "/v1/check-ins:sms")


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

    async def assemble(service: ServiceRuntime) -> None:
        db, tick = service.db, settings.escalation_tick_seconds
        directory = await service.open(DirectoryClient(settings.directory_target, tls=service.tls))
        await service.consume(
            "consumer",
            topic=topics.TASKS,
            group=GROUP,
            handler=task_handler(policy),
            accepts=accepts,
        )
        await service.run(
            "deadlines",
            DeadlineWatcher(db, directory.chain, policy, tick, check_ins=check_ins, links=links),
        )
        await service.run(
            "zero_reports",
            ZeroReportWatcher(
                db,
                DirectoryRoster(directory),
                schedule,
                settings.escalation_zero_report_tick_seconds,
            ),
        )
        await service.run(
            "personal data retention",
            PersonalDataRetention(db, settings, retention.PERSONAL_DATA),
        )
        # Staff tokens are checked by the routes and the Tasks service alike (gridline.staff).
        staff_tokens = await service.open(TokenVerifier.from_settings(settings))
        await service.serve(
            settings.tasks_grpc_port,
            tasks_pb2_grpc.add_TasksServicer_to_server,
            TasksServicer(
                db, policy, directory.place, staff_tokens, check_ins, links, directory.household
            ),
            tasks_pb2.DESCRIPTOR.services_by_name["Tasks"],
        )
        service.state.staff_tokens = staff_tokens
        service.state.place_of = directory.place
        service.state.policy = policy
        service.state.links = links
        service.state.check_ins = check_ins
        service.state.chain_of = directory.chain
        service.state.schedule = schedule
        # Household visits and visit rounds (visit_routes), and the rounds' deadline timer.
        households = DirectoryHouseholds(directory)
        service.state.household_of = directory.household
        service.state.visit_households = households
        await service.run("visit_rounds", RoundWatcher(db, households, directory.chain, tick))
        # The staff workbench asks the Directory for names, households and chains.
        service.state.directory = directory
        service.state.workbench_names = NodeNames(directory)
        service.state.intake_staff_url = settings.intake_staff_base_url

    return assembled_app(
        settings,
        "escalation",
        storage,
        description="Tasks, their deadlines and escalations up the chain.",
        assemble=assemble,
        # The staff workbench (services/escalation/workbench): one router per page module.
        routers=[
            routes.router,
            page.router,
            visit_routes.router,
            sign_in.router,
            tasks.router,
            triage.router,
            forms.router,
            register.router,
            picture.router,
        ],
        public_paths=PUBLIC_PATHS,
    )
