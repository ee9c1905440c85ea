"""A reassignment names a node the Directory has, over HTTP and gRPC, or it is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from fastapi import FastAPI

from gridline import problems
from gridline.contracts.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.rpc import RpcServer, channel
from gridline.settings import Settings
from gridline.timestamps import now
from services.escalation import routes, storage
from services.escalation.check_ins import CheckInRules
from services.escalation.policy import every_level_after
from services.escalation.servicer import TasksServicer
from tests.assignment.serving import directory_server
from tests.assignment.support import LINKS
from tests.escalation.conftest import new_task
from tests.escalation.local import OTHER_HOUSEHOLD, county, escalation_db
from tests.staff.tokens import bearer, metadata, verifier

POLICY = every_level_after(timedelta(minutes=30))
REASSIGN = {"level": common_pb2.CHAIN_LEVEL_CADRE, "group_id": "grp-p-cadre"}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with escalation_db(Settings(data_dir=tmp_path)) as database:
        yield database


@pytest.fixture
async def directory(tmp_path: Path) -> AsyncIterator[DirectoryClient]:
    async with (
        directory_server(county(), Settings(data_dir=tmp_path / "assignment")) as target,
        DirectoryClient(target, attempts=1) as client,
    ):
        yield client


def app_with(db: Database, place_of: object, data_dir: Path) -> httpx.AsyncClient:
    app = FastAPI()
    problems.install(app)  # errors answered as the services answer them
    app.include_router(routes.router)
    app.state.db, app.state.policy, app.state.place_of = db, POLICY, place_of
    app.state.check_ins, app.state.links = CheckInRules(), LINKS
    app.state.staff_tokens = verifier(data_dir)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://escalation",
        headers=bearer(data_dir),
    )


async def stored_task(db: Database, *, triage: bool = True) -> storage.Task:
    task = new_task(POLICY, now(), triage=triage)
    async with db.session() as session:
        session.add(task)
    return task


async def node_of(db: Database, task_id: str) -> str:
    async with db.session() as session:
        task = await storage.get_task(session, task_id)
    assert task is not None
    return task.node_id


async def test_reassigning_to_a_node_not_in_the_directory_is_refused_over_http(
    db: Database, directory: DirectoryClient, tmp_path: Path
) -> None:
    task = await stored_task(db)
    async with app_with(db, directory.place, tmp_path) as client:
        url = f"/v1/tasks/{task.task_id}:reassign"
        refused = await client.post(url, json={**REASSIGN, "node_id": "h-nowhere"})
        assert refused.status_code == 422
        [problem] = refused.json()["errors"]
        assert (problem["field"], problem["rule"]) == ("node_id", "node_id.unknown")
        assert "目录中没有编号为“h-nowhere”" in problem["detail"]
        assert "目录中没有编号为“h-nowhere”" in refused.json()["detail"]
        assert await node_of(db, task.task_id) == task.node_id  # nothing changed

        placed = await client.post(url, json={**REASSIGN, "node_id": OTHER_HOUSEHOLD})
        assert placed.status_code == 200, placed.text
        assert placed.json()["state"] == "assigned"
    assert await node_of(db, task.task_id) == OTHER_HOUSEHOLD


async def test_a_reassignment_the_directory_cannot_check_now_is_a_503(
    db: Database, tmp_path: Path
) -> None:
    task = await stored_task(db)
    async with (
        DirectoryClient(f"127.0.0.1:{free_port()}", timeout=0.5, attempts=1) as nobody,
        app_with(db, nobody.place, tmp_path) as client,
    ):
        answer = await client.post(
            f"/v1/tasks/{task.task_id}:reassign", json={**REASSIGN, "node_id": OTHER_HOUSEHOLD}
        )
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json()["rule"] == "directory.unavailable"
    assert "任务未改派" in answer.json()["detail"]
    assert await node_of(db, task.task_id) == task.node_id


async def test_reassigning_to_a_node_not_in_the_directory_is_refused_over_grpc(
    db: Database, directory: DirectoryClient, tmp_path: Path
) -> None:
    task = await stored_task(db)
    port = free_port()
    servicer = TasksServicer(db, POLICY, directory.place, verifier(tmp_path))
    server = RpcServer.serving(
        "127.0.0.1", port,
        tasks_pb2_grpc.add_TasksServicer_to_server, servicer,
        tasks_pb2.DESCRIPTOR.services_by_name["Tasks"],
    )  # fmt: skip
    async with server:
        client = channel(f"127.0.0.1:{port}")
        stub = tasks_pb2_grpc.TasksStub(client)
        assignee = common_pb2.Responsible(**REASSIGN)  # type: ignore[arg-type]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Reassign(
                tasks_pb2.ReassignRequest(
                    task_id=task.task_id, assignee=assignee, node_id="h-nowhere"
                ),
                metadata=metadata(tmp_path),
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (refused.value.details() or "").startswith("node_id.unknown: 目录中没有编号为")
        placed = await stub.Reassign(
            tasks_pb2.ReassignRequest(
                task_id=task.task_id, assignee=assignee, node_id=OTHER_HOUSEHOLD
            ),
            metadata=metadata(tmp_path),
        )
        assert placed.state == "assigned"
        await client.close()
    assert await node_of(db, task.task_id) == OTHER_HOUSEHOLD
