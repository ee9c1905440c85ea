"""The gRPC Tasks service over loopback: the same actions as the page, and their refusals."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from gridline.contracts.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc
from gridline.db import Database
from gridline.embedded import free_port
from gridline.rpc import RpcServer, channel
from gridline.staff.identity import Place
from gridline.staff.roles import Role
from gridline.timestamps import now
from services.escalation.check_ins import CheckInRules
from services.escalation.measures import FollowUp
from services.escalation.policy import every_level_after
from services.escalation.servicer import TasksServicer
from tests.escalation.conftest import new_task
from tests.staff.tokens import COUNTY, metadata, person, verifier

POLICY = every_level_after(timedelta(minutes=30))


async def static_place(_node_id: str) -> Place:
    """Every node in the same grid."""
    return Place(township_id="t-1", community_id="cm-1", grid_id="grid-1")


class Signed:
    """A stub whose calls carry a staff token (the county office's unless a call gives one)."""

    def __init__(self, stub: tasks_pb2_grpc.TasksStub, data_dir: Path) -> None:
        self._stub, self._metadata = stub, metadata(data_dir)

    def __getattr__(self, method: str) -> Any:
        return functools.partial(getattr(self._stub, method), metadata=self._metadata)


@pytest.fixture
async def stub(db: Database, tmp_path: Path) -> AsyncIterator[tasks_pb2_grpc.TasksStub]:
    async with serving(db, tmp_path) as signed:
        yield signed


@pytest.fixture
async def measured(db: Database, tmp_path: Path) -> AsyncIterator[tasks_pb2_grpc.TasksStub]:
    """The service with the check-in rules: measures run their plans."""
    async with serving(db, tmp_path, CheckInRules()) as signed:
        yield signed


@asynccontextmanager
async def serving(
    db: Database, tmp_path: Path, check_ins: CheckInRules | None = None
) -> AsyncIterator[tasks_pb2_grpc.TasksStub]:
    port = free_port()
    server = RpcServer.serving(
        "127.0.0.1",
        port,
        tasks_pb2_grpc.add_TasksServicer_to_server,
        TasksServicer(db, POLICY, static_place, verifier(tmp_path), check_ins),
        tasks_pb2.DESCRIPTOR.services_by_name["Tasks"],
    )
    await server.start()
    client = channel(f"127.0.0.1:{port}")
    yield Signed(tasks_pb2_grpc.TasksStub(client), tmp_path)  # type: ignore[misc]
    await client.close()
    await server.stop(grace=0.1)


async def stored(db: Database, *, triage: bool = False) -> str:
    task = new_task(POLICY, now(), triage=triage)
    async with db.session() as session:
        session.add(task)
    return task.task_id


async def test_every_action_over_grpc_with_its_audit_trail(
    stub: tasks_pb2_grpc.TasksStub, db: Database, tmp_path: Path
) -> None:
    task_id = await stored(db)
    task = await stub.Acknowledge(tasks_pb2.AcknowledgeRequest(task_id=task_id, actor="sys-a"))
    assert task.state == "acknowledged" and not task.HasField("deadline_at")
    assert list(task.allowed_actions) == [
        "record_visit", "send_to_triage", "reassign", "record_test", "record_left",
        "record_not_found",
    ]  # fmt: skip
    request = tasks_pb2.TaskActionRequest(task_id=task_id, actor="sys-a", note="已入户")
    assert (await stub.RecordVisit(request)).state == "visited"
    task = await stub.StartMeasure(
        tasks_pb2.StartMeasureRequest(
            task_id=task_id, actor="sys-a", measure=tasks_pb2.TASK_MEASURE_QUARANTINE
        )
    )
    assert (task.state, task.measure) == ("under_control", "quarantine")
    task = await stub.EndMeasure(
        tasks_pb2.TaskActionRequest(task_id=task_id, actor="sys-b"),
        metadata=metadata(tmp_path, Role.CADRE, "grid-1"),
    )
    assert task.state == "closed" and list(task.allowed_actions) == []

    trail = await stub.ListTaskChanges(tasks_pb2.ListTaskChangesRequest(task_id=task_id))
    # The audit names whose token acted, not the request's `actor`.
    office = person(Role.COUNTY_OFFICE, COUNTY).audit_name
    assert [(c.action, c.actor, c.channel) for c in trail.changes] == [
        ("acknowledge", office, "grpc"),
        ("record_visit", office, "grpc"),
        ("start_measure", office, "grpc"),
        ("end_measure", person(Role.CADRE, "grid-1").audit_name, "grpc"),
    ]
    assert trail.changes[1].note == "已入户"


async def test_triage_reassignment_and_closing_over_grpc(
    stub: tasks_pb2_grpc.TasksStub, db: Database
) -> None:
    task_id = await stored(db)
    action = tasks_pb2.TaskActionRequest(task_id=task_id, actor="cadre")
    assert (await stub.SendToTriage(action)).state == "triage"
    placed = await stub.Reassign(
        tasks_pb2.ReassignRequest(
            task_id=task_id, actor="community",
            assignee=common_pb2.Responsible(level=common_pb2.CHAIN_LEVEL_CADRE, group_id="g-new"),
            node_id="household-7",
        )
    )  # fmt: skip
    assert (placed.state, placed.assignee_group_id) == ("assigned", "g-new")
    other = await stored(db, triage=True)
    closed = await stub.Close(tasks_pb2.TaskActionRequest(task_id=other, actor="community"))
    assert closed.state == "closed"


async def test_refusals_carry_the_right_codes(stub: tasks_pb2_grpc.TasksStub, db: Database) -> None:
    task_id = await stored(db)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.EndMeasure(tasks_pb2.TaskActionRequest(task_id=task_id))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.details() == "cannot end_measure a task that is assigned"

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.RecordVisit(tasks_pb2.TaskActionRequest(task_id="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as no_measure:
        await stub.StartMeasure(tasks_pb2.StartMeasureRequest(task_id=task_id))
    assert no_measure.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(grpc.aio.AioRpcError) as no_assignee:
        await stub.Reassign(tasks_pb2.ReassignRequest(task_id=task_id))
    assert no_assignee.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_tests_outcomes_and_early_ends_over_grpc(
    measured: tasks_pb2_grpc.TasksStub, db: Database, tmp_path: Path
) -> None:
    plan = FollowUp(measure_days=14, test_days=(1, 7), measure_ends_at=now() + timedelta(days=14))
    task = new_task(POLICY, now(), follow_up=plan)
    async with db.session() as session:
        session.add(task)
    task_id = task.task_id
    action = tasks_pb2.TaskActionRequest(task_id=task_id)
    await measured.Acknowledge(tasks_pb2.AcknowledgeRequest(task_id=task_id))
    await measured.RecordVisit(action)
    started = await measured.StartMeasure(
        tasks_pb2.StartMeasureRequest(task_id=task_id, measure=tasks_pb2.TASK_MEASURE_QUARANTINE)
    )
    assert started.measure_ends_at.ToDatetime() > started.measure_started_at.ToDatetime()

    negative = tasks_pb2.RecordTestResultRequest(
        task_id=task_id, result=tasks_pb2.TEST_RESULT_NEGATIVE, source_id="lab-1"
    )
    assert (await measured.RecordTestResult(negative)).state == "under_control"
    again = await measured.RecordTestResult(negative)  # the same sample: recorded once
    assert [t.result for t in (await measured.GetTask(
        tasks_pb2.GetTaskRequest(task_id=task_id))).test_results] == [
        tasks_pb2.TEST_RESULT_NEGATIVE
    ] and again.state == "under_control"  # fmt: skip

    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await measured.RequestEarlyEnd(action)
    assert no_reason.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert no_reason.value.details() == "申请提前解除管控须说明理由"
    asked = tasks_pb2.TaskActionRequest(task_id=task_id, note="经核实系重复报告")
    assert (await measured.RequestEarlyEnd(asked)).state == "end_requested"
    cadre = metadata(tmp_path, Role.CADRE, "grid-1")
    with pytest.raises(grpc.aio.AioRpcError) as too_low:
        await measured.DecideEarlyEnd(
            tasks_pb2.DecideEarlyEndRequest(task_id=task_id, approve=True), metadata=cadre
        )
    assert too_low.value.code() == grpc.StatusCode.PERMISSION_DENIED
    refused = await measured.DecideEarlyEnd(tasks_pb2.DecideEarlyEndRequest(task_id=task_id))
    assert refused.state == "under_control"

    positive = tasks_pb2.RecordTestResultRequest(
        task_id=task_id, result=tasks_pb2.TEST_RESULT_POSITIVE, source_id="lab-2"
    )
    assert (await measured.RecordTestResult(positive)).state == "transfer"
    with pytest.raises(grpc.aio.AioRpcError) as no_outcome:
        await measured.RecordOutcome(tasks_pb2.RecordOutcomeRequest(task_id=task_id))
    assert no_outcome.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    moved = await measured.RecordOutcome(
        tasks_pb2.RecordOutcomeRequest(task_id=task_id, outcome=tasks_pb2.CASE_OUTCOME_HOSPITAL)
    )
    assert moved.state == "hospital" and list(moved.allowed_actions) == []
    trail = await measured.ListTaskChanges(tasks_pb2.ListTaskChangesRequest(task_id=task_id))
    assert [c.action for c in trail.changes][-5:] == [
        "record_test", "request_early_end", "refuse_early_end", "record_test", "to_hospital",
    ]  # fmt: skip
