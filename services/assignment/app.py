"""Assignment's app factory: directory, gRPC server and the reports consumer.

The directory and risk areas are loaded at start and followed while the replica runs
(`following`): a change made through any replica, or a `gridline directory import`, reaches
this one without a restart.
"""

from __future__ import annotations

from fastapi import FastAPI

from gridline.bus import topics
from gridline.bus.retention import PersonalDataRetention
from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.links import PageLinks
from gridline.logging import get_logger
from gridline.personal import Sealer
from gridline.service import ServiceRuntime, assembled_app
from gridline.settings import Settings
from gridline.staff.http import signed_in
from gridline.staff.tokens import TokenVerifier
from services.assignment import demo_county, retention, reveal_routes, routes, storage
from services.assignment.assignee import CadreLoad
from services.assignment.consumers import (
    GROUP,
    TASKS_GROUP,
    prepare_reports,
    report_handler,
    task_handler,
    tasks_accepts,
)
from services.assignment.directory import Directory
from services.assignment.following import following
from services.assignment.risk import DEFAULT_POLICY_FILE, load_policy
from services.assignment.servicer import DirectoryServicer

log = get_logger(__name__)


async def _seed_demo_county(db: Database) -> None:
    async with db.session() as session:
        if await storage.directory_size(session) == 0:
            county = demo_county.generate()
            await storage.replace_directory(
                session, Directory(county.nodes, county.people, county.groups, county.micro_grids)
            )
            log.info("demo county loaded", nodes=len(county.nodes))


def create_app(settings: Settings) -> FastAPI:
    """Build assignment's ASGI app."""

    # A bad policy file stops the service at start, before it takes any report.
    policy = load_policy(settings.assignment_policy_file or DEFAULT_POLICY_FILE)

    async def assemble(service: ServiceRuntime) -> None:
        db = service.db
        if settings.seed_demo_county:
            await _seed_demo_county(db)
        async with db.session() as session:
            load = CadreLoad(await storage.open_counts(session))
        follower = await service.open(following(db, settings.assignment_follow_seconds))
        staff_tokens = await service.open(TokenVerifier.from_settings(settings))
        await service.serve(
            settings.directory_grpc_port,
            directory_pb2_grpc.add_DirectoryServicer_to_server,
            DirectoryServicer(
                follower.current, db, load, staff_tokens, Sealer.from_settings(settings)
            ),
            directory_pb2.DESCRIPTOR.services_by_name["Directory"],
        )
        links = PageLinks.from_settings(settings)
        await service.consume(
            "consumer",
            topic=topics.REPORTS,
            group=GROUP,
            handler=report_handler(follower.current, links, load, policy),
            prepare=prepare_reports,
        )
        await service.consume(
            "tasks consumer",
            topic=topics.TASKS,
            group=TASKS_GROUP,
            handler=task_handler(load),
            accepts=tasks_accepts,
        )
        await service.run(
            "personal data retention",
            PersonalDataRetention(db, settings, retention.PERSONAL_DATA),
        )
        service.state.follower = follower
        service.state.staff_tokens = staff_tokens
        service.state.policy = policy

    return assembled_app(
        settings,
        "assignment",
        storage,
        description="The grid directory; places reports and creates their tasks.",
        assemble=assemble,
        routers=[
            routes.router,
            reveal_routes.reveal_router(Sealer.from_settings(settings), signed_in),
        ],
    )
