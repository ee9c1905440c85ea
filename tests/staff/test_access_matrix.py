"""The access matrix: every staff route and gRPC method × (no credential, wrong role, other
community, right scope) → 401 / 403 / 403 / success (a list: 200 without the other's things).

The real apps of assignment, escalation and notify, started once for the module without a
broker (`tests.intake.local`) on one data directory: real SQLite, the real local issuer, the
assignment's real Directory (a small county, `tests.staff.county`) that escalation asks. Routes
are enumerated from each service's OpenAPI document and methods from gRPC reflection: one this
module has no expectation for fails it, so a new route or method cannot slip by unguarded.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gridline.contracts.v1 import (
    common_pb2,
    directory_pb2,
    directory_pb2_grpc,
    notify_pb2,
    notify_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from gridline.db import Database
from gridline.ids import new_id
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.staff.identity import Place
from gridline.staff.roles import Role
from gridline.staff.tokens import TokenVerifier
from gridline.timestamps import SHANGHAI, now
from services.assignment import sealed
from services.assignment import storage as assignment_storage
from services.assignment.app import create_app as assignment_app
from services.escalation import storage as escalation_storage
from services.escalation import visit_flows, zero_report_flows
from services.escalation.app import create_app as escalation_app
from services.escalation.domain import TaskState
from services.escalation.visits import Outcome
from services.escalation.zero_reports import Counts, Schedule
from services.intake.app import create_app as intake_app
from services.notify import storage as notify_storage
from services.notify.app import create_app as notify_app
from tests.intake.local import local_settings, started
from tests.personal_data.support import sealed_report
from tests.staff import jwks
from tests.staff.county import A, B, C, Spot, county
from tests.staff.tokens import bearer, metadata, person

RoleAt = tuple[Role, str]


@dataclass(frozen=True)
class Expect:
    """Who may: `right` succeeds; `wrong` is a role without the permission (None: every role
    has it); `other` the right role at a node the thing is not under (None: a county-wide
    action); `listing`: the other node's answer is 200 without the thing, not 403."""

    right: RoleAt
    wrong: RoleAt | None
    other: RoleAt | None
    listing: bool = False


@dataclass
class Ctx:
    """The started apps and what tests reach them with."""

    data_dir: Path
    http: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]
    channels: dict[str, grpc.aio.Channel]
    settings: Settings

    def headers(self, who: RoleAt | None) -> dict[str, str]:
        return {} if who is None else bearer(self.data_dir, *who)

    def metadata(self, who: RoleAt | None) -> tuple[tuple[str, str], ...]:
        return () if who is None else metadata(self.data_dir, *who)

    @property
    def tasks_db(self) -> Database:
        db: Database = self.apps["escalation"].state.db
        return db

    async def task(self, spot: Spot, state: TaskState, measure: str | None = None) -> str:
        """A new task of `spot`'s household in `state`."""
        moment = now()
        task_id = new_id()
        async with self.tasks_db.session() as session:
            session.add(
                escalation_storage.Task(
                    task_id=task_id,
                    report_id=f"r-{task_id}",
                    node_id=spot.household,
                    grid_id=spot.place.grid_id,
                    community_id=spot.place.community_id,
                    township_id=spot.place.township_id,
                    triage=False,
                    state=state,
                    level=common_pb2.CHAIN_LEVEL_CADRE,
                    assignee_group_id=f"grp-{spot.cadre}",
                    assignee_level=common_pb2.CHAIN_LEVEL_CADRE,
                    origin_risk=common_pb2.RISK_LEVEL_MEDIUM,
                    measure=measure,
                    summary="王* 自北京返回",
                    report_accepted_at=moment,
                    created_at=moment,
                    assigned_at=moment,
                )
            )
        return task_id

    async def stored(self, task_id: str) -> escalation_storage.Task:
        async with self.tasks_db.session() as session:
            task = await escalation_storage.get_task(session, task_id)
        assert task is not None
        return task

    async def actor_of_last_change(self, task_id: str) -> str:
        async with self.tasks_db.session() as session:
            changes = await escalation_storage.changes_of(session, task_id)
        return changes[-1].actor


@pytest.fixture(scope="module")
async def ctx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ctx]:
    data_dir = tmp_path_factory.mktemp("staff-matrix")
    settings = local_settings(Settings(data_dir=data_dir))
    # Escalation asks the Directory the assignment app serves.
    settings = settings.model_copy(
        update={"directory_target": f"127.0.0.1:{settings.directory_grpc_port}"}
    )
    tables, migrations = assignment_storage.TABLES, assignment_storage.MIGRATIONS
    async with (
        Database(settings, "assignment", tables, migrations) as db,
        db.session() as session,
    ):
        await assignment_storage.replace_directory(session, county())
    with pytest.MonkeyPatch.context() as patch:
        async with (
            started(assignment_app, settings, patch) as (assignment_http, assignment, _),
            started(escalation_app, settings, patch) as (escalation_http, escalation, _),
            started(notify_app, settings, patch) as (notify_http, notify, _),
            started(intake_app, settings, patch) as (intake_http, _intake, _),
            grpc.aio.insecure_channel(f"127.0.0.1:{settings.directory_grpc_port}") as directory,
            grpc.aio.insecure_channel(f"127.0.0.1:{settings.tasks_grpc_port}") as tasks,
            grpc.aio.insecure_channel(f"127.0.0.1:{settings.notify_grpc_port}") as deliveries,
        ):
            async with notify.state.db.session() as session:
                session.add(
                    notify_storage.Delivery(
                        notification_id="n-1",
                        channel="inbox",
                        group_id="grp-p-cadreA",
                        outcome="delivered",
                        attempts=1,
                        finished_at=now(),
                    )
                )
            yield Ctx(
                data_dir=data_dir,
                http={
                    "assignment": assignment_http,
                    "escalation": escalation_http,
                    "notify": notify_http,
                    "intake": intake_http,
                },
                apps={"assignment": assignment, "escalation": escalation, "notify": notify},
                channels={"assignment": directory, "escalation": tasks, "notify": deliveries},
                settings=settings,
            )


# --- HTTP -------------------------------------------------------------------------------------

# A route's call: makes its own target, sends the request with the headers, and returns the
# answer with the target's id (what a list must or must not show; the task an action changed).
HttpCall = Callable[[Ctx, dict[str, str]], Awaitable[tuple[httpx.Response, str]]]

COMMUNITY_A: RoleAt = (Role.COMMUNITY_STAFF, "cmA")
COMMUNITY_B: RoleAt = (Role.COMMUNITY_STAFF, "cmB")
READ = Expect(COMMUNITY_A, (Role.OPERATOR, "c"), COMMUNITY_B)
ACT = Expect((Role.CADRE, "gA"), (Role.HEALTH_CENTRE, "t1"), (Role.CADRE, "gB"))
REASSIGN = Expect((Role.LIAISON, "gA"), (Role.CADRE, "gA"), (Role.LIAISON, "gB"))
# Deciding on an early end: the township office (or the county); a cadre may act on tasks and
# ask for one, but deciding is not its role's (403, not a 422 on the request).
DECIDE = Expect((Role.TOWNSHIP_OFFICE, "t1"), (Role.CADRE, "gA"), (Role.TOWNSHIP_OFFICE, "t2"))
# The states a task has a measure in (the task A of the matrix is made with one).
MEASURED = (TaskState.UNDER_CONTROL, TaskState.END_REQUESTED, TaskState.TRANSFER)
DAY = date(2026, 1, 20)


async def set_duty(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    body = {"on_leave": True, "backup_id": "p-cadreA2"}
    answer = await ctx.http["assignment"].put(
        "/v1/cadres/p-cadreA/duty", json=body, headers=headers
    )
    return answer, "p-cadreA"


async def reveal(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    report_id = new_id()
    db: Database = ctx.apps["assignment"].state.db
    async with db.session() as session:
        assignment_storage.record_placement(
            session, report_id=report_id, task_id=f"t-{report_id}", node_id=A.household,
            grid_id=A.place.grid_id, triage=False, assignee_id=A.cadre,
        )  # fmt: skip
        sealed.keep(session, sealed_report(report_id, Sealer.from_settings(ctx.settings)))
    body = {"field": "phone", "purpose": "入户核查联系本人"}
    url = f"/v1/reports/{report_id}/reveal"
    return await ctx.http["assignment"].post(url, json=body, headers=headers), report_id


async def change_risk_area(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    body = {"region_code": "310115", "level": "high"}
    return await ctx.http["assignment"].post("/v1/risk-areas", json=body, headers=headers), ""


async def read(
    service: str, path: str, ctx: Ctx, headers: dict[str, str]
) -> tuple[httpx.Response, str]:
    return await ctx.http[service].get(path, headers=headers), ""


async def list_tasks(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    task_id = await ctx.task(A, TaskState.ASSIGNED)
    answer = await ctx.http["escalation"].get("/v1/tasks", params={"limit": 1000}, headers=headers)
    return answer, task_id


async def get_task(suffix: str, ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    task_id = await ctx.task(A, TaskState.ASSIGNED)
    return await ctx.http["escalation"].get(
        f"/v1/tasks/{task_id}{suffix}", headers=headers
    ), task_id


async def act(
    action: str,
    state: TaskState,
    body: dict[str, Any] | None,
    ctx: Ctx,
    headers: dict[str, str],
) -> tuple[httpx.Response, str]:
    measure = "quarantine" if state in MEASURED else None
    task_id = await ctx.task(A, state, measure)
    url = f"/v1/tasks/{task_id}:{action}"
    return await ctx.http["escalation"].post(url, json=body, headers=headers), task_id


async def submit_zero_report(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    body = {"grid_id": "gA", "day": DAY.isoformat(), "arrivals": 1, "under_control": 1,
            "abnormal": 0, "households_visited": 3}  # fmt: skip
    return await ctx.http["escalation"].post("/v1/zero-reports", json=body, headers=headers), "gA"


async def file_cadre_report(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    body = {"source": "cadre_visit", "cadre_id": "anyone", "name": "张伟",
            "id_number": "62010219900307123X", "phone": "13812345678", "origin_name": "上海市",
            "origin_risk": "low", "arrived_at": "2022-01-28T18:40:00+08:00",
            "address": "皋兰县石洞镇三和社区三和小区23号楼2单元301室"}  # fmt: skip
    return await ctx.http["intake"].post("/v1/staff/reports", json=body, headers=headers), ""


async def list_zero_reports(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    schedule: Schedule = ctx.apps["escalation"].state.schedule
    await zero_report_flows.submit(
        ctx.tasks_db,
        schedule,
        "gA",
        DAY,
        Counts(),
        actor="测试",
        channel="http",
        moment=now(),
        place=A.place,
    )
    params = {"day": DAY.isoformat()}
    return await ctx.http["escalation"].get(
        "/v1/zero-reports", params=params, headers=headers
    ), "gA"


async def record_visit(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    body = {"household_id": A.household, "outcome": "met"}
    return await ctx.http["escalation"].post("/v1/visits", json=body, headers=headers), ""


async def list_visits(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    note = f"门口登记-{new_id()}"
    visit = visit_flows.Visit(A.household, Outcome.REFUSED, now(), note=note)
    cadre = person(Role.CADRE, "gA")
    await visit_flows.record_visit(ctx.tasks_db, visit, A.place, cadre, channel="http",
                                   moment=now())  # fmt: skip
    params = {"day": now().astimezone(SHANGHAI).date().isoformat()}
    return await ctx.http["escalation"].get("/v1/visits", params=params, headers=headers), note


async def open_visit_round(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    body = {"name": "A小区敲门行动", "node_id": "gA",
            "deadline_at": (now() + timedelta(days=3)).isoformat()}  # fmt: skip
    return await ctx.http["escalation"].post("/v1/visit-rounds", json=body, headers=headers), ""


async def list_visit_rounds(ctx: Ctx, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    name = f"A社区每月遍访-{new_id()}"
    await visit_flows.open_round(
        ctx.tasks_db, name=name, node_id="cmA", place=Place("t1", "cmA", ""), starts_at=now(),
        deadline_at=now() + timedelta(days=30), staff=person(*COMMUNITY_A), moment=now(),
    )  # fmt: skip
    return await ctx.http["escalation"].get("/v1/visit-rounds", headers=headers), name


HTTP: dict[str, dict[tuple[str, str], tuple[Expect, HttpCall]]] = {
    "assignment": {
        ("put", "/v1/cadres/{person_id}/duty"): (
            Expect(COMMUNITY_A, (Role.CADRE, "gA"), COMMUNITY_B), set_duty,
        ),
        ("post", "/v1/reports/{report_id}/reveal"): (
            Expect((Role.CADRE, "gA"), (Role.HEALTH_CENTRE, "t1"), (Role.CADRE, "gB")), reveal,
        ),
        ("post", "/v1/risk-areas"): (
            Expect((Role.COUNTY_OFFICE, "c"), (Role.TOWNSHIP_OFFICE, "t1"), None),
            change_risk_area,
        ),
        ("get", "/v1/risk-areas"): (
            Expect((Role.CADRE, "gA"), None, None),
            functools.partial(read, "assignment", "/v1/risk-areas"),
        ),
        ("get", "/v1/risk-areas/history"): (
            Expect((Role.HEALTH_CENTRE, "t1"), None, None),
            functools.partial(read, "assignment", "/v1/risk-areas/history"),
        ),
    },
    "escalation": {
        ("get", "/v1/tasks"): (
            Expect(COMMUNITY_A, (Role.OPERATOR, "c"), COMMUNITY_B, listing=True), list_tasks,
        ),
        ("get", "/v1/tasks/{task_id}"): (READ, functools.partial(get_task, "")),
        ("get", "/v1/tasks/{task_id}/changes"): (READ, functools.partial(get_task, "/changes")),
        ("post", "/v1/tasks/{task_id}:acknowledge"): (
            ACT, functools.partial(act, "acknowledge", TaskState.ASSIGNED, None),
        ),
        ("post", "/v1/tasks/{task_id}:record-visit"): (
            ACT, functools.partial(act, "record-visit", TaskState.ACKNOWLEDGED, {"note": "已入户"}),
        ),
        ("post", "/v1/tasks/{task_id}:start-measure"): (
            ACT,
            functools.partial(act, "start-measure", TaskState.VISITED, {"measure": "quarantine"}),
        ),
        ("post", "/v1/tasks/{task_id}:end-measure"): (
            ACT, functools.partial(act, "end-measure", TaskState.UNDER_CONTROL, None),
        ),
        ("post", "/v1/tasks/{task_id}:close"): (
            ACT, functools.partial(act, "close", TaskState.VISITED, None),
        ),
        ("post", "/v1/tasks/{task_id}:send-to-triage"): (
            ACT, functools.partial(act, "send-to-triage", TaskState.ASSIGNED, None),
        ),
        ("post", "/v1/tasks/{task_id}:reassign"): (
            REASSIGN,
            functools.partial(
                act, "reassign", TaskState.ASSIGNED,
                {"level": 1, "group_id": "grp-p-cadreA2", "node_id": "hA3"},
            ),
        ),
        ("post", "/v1/tasks/{task_id}:record-test"): (
            ACT,
            functools.partial(act, "record-test", TaskState.UNDER_CONTROL, {"result": "negative"}),
        ),
        ("get", "/v1/tasks/{task_id}/test-results"): (
            READ, functools.partial(get_task, "/test-results"),
        ),
        ("post", "/v1/tasks/{task_id}:request-early-end"): (
            ACT,
            functools.partial(
                act, "request-early-end", TaskState.UNDER_CONTROL, {"note": "经核实系重复报告"}
            ),
        ),
        ("post", "/v1/tasks/{task_id}:approve-early-end"): (
            DECIDE, functools.partial(act, "approve-early-end", TaskState.END_REQUESTED, None),
        ),
        # A community may act on tasks too, and may not decide either; the county may.
        ("post", "/v1/tasks/{task_id}:refuse-early-end"): (
            Expect((Role.COUNTY_OFFICE, "c"), COMMUNITY_A, (Role.TOWNSHIP_OFFICE, "t2")),
            functools.partial(act, "refuse-early-end", TaskState.END_REQUESTED, None),
        ),
        ("post", "/v1/tasks/{task_id}:record-left"): (
            ACT,
            functools.partial(act, "record-left", TaskState.VISITED, {"note": "去往兰州市城关区"}),
        ),
        ("post", "/v1/tasks/{task_id}:record-not-found"): (
            ACT, functools.partial(act, "record-not-found", TaskState.ACKNOWLEDGED, None),
        ),
        ("post", "/v1/tasks/{task_id}:to-hospital"): (
            ACT, functools.partial(act, "to-hospital", TaskState.TRANSFER, None),
        ),
        ("post", "/v1/tasks/{task_id}:to-isolation"): (
            ACT, functools.partial(act, "to-isolation", TaskState.UNDER_CONTROL, None),
        ),
        ("post", "/v1/zero-reports"): (
            Expect((Role.CADRE, "gA"), (Role.TOWNSHIP_OFFICE, "t1"), (Role.LIAISON, "gB")),
            submit_zero_report,
        ),
        ("get", "/v1/zero-reports"): (
            Expect(COMMUNITY_A, (Role.CADRE, "gA"), COMMUNITY_B, listing=True),
            list_zero_reports,
        ),
        ("post", "/v1/visits"): (ACT, record_visit),
        ("get", "/v1/visits"): (
            Expect(COMMUNITY_A, (Role.HEALTH_CENTRE, "t1"), COMMUNITY_B, listing=True),
            list_visits,
        ),
        ("post", "/v1/visit-rounds"): (
            Expect(COMMUNITY_A, (Role.LIAISON, "gA"), COMMUNITY_B), open_visit_round,
        ),
        ("get", "/v1/visit-rounds"): (
            Expect(COMMUNITY_A, (Role.HEALTH_CENTRE, "t1"), COMMUNITY_B, listing=True),
            list_visit_rounds,
        ),
    },
    "notify": {
        ("get", "/v1/notifications/{notification_id}"): (
            Expect((Role.OPERATOR, "c"), (Role.CADRE, "gA"), None),
            functools.partial(read, "notify", "/v1/notifications/n-1"),
        ),
    },
    "intake": {
        # A cadre's arrival from the workbench (issue 17): any grid's cadre, no node to scope.
        ("post", "/v1/staff/reports"): (
            Expect((Role.CADRE, "gA"), (Role.HEALTH_CENTRE, "t1"), None), file_cadre_report,
        ),
    },
}  # fmt: skip

# Routes that are no operator action, and who calls them instead.
NOT_STAFF: dict[str, dict[tuple[str, str], str]] = {
    "intake": {
        ("post", "/v1/reports"): "integrators, signed with their key (HMAC)",
        ("post", "/v1/reports:batch"): "integrators, signed with their key (HMAC)",
        ("get", "/v1/reports/{report_id}"): "integrators, signed with their key (HMAC)",
    },
    "assignment": {},
    "escalation": {("post", "/v1/check-ins:sms"): "the SMS gateway (the vendor's callback)"},
    "notify": {},
}
APPS = {
    "intake": intake_app,
    "assignment": assignment_app,
    "escalation": escalation_app,
    "notify": notify_app,
}


def operations(document: dict[str, Any]) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield (method, path), operation


@pytest.mark.parametrize("service", list(APPS))
def test_every_route_is_expected_and_staff_routes_declare_the_token(
    service: str, tmp_path: Path
) -> None:
    document = APPS[service](local_settings(Settings(data_dir=tmp_path))).openapi()
    found = dict(operations(document))
    assert set(found) == set(HTTP[service]) | set(NOT_STAFF[service])
    for key, operation in found.items():
        security = [name for requirement in operation.get("security", []) for name in requirement]
        assert ("staffToken" in security) == (key in HTTP[service]), key


def staff_routes() -> Iterator[tuple[str, tuple[str, str]]]:
    for service, routes in HTTP.items():
        for key in routes:
            yield service, key


@pytest.mark.parametrize(("service", "route"), list(staff_routes()))
async def test_staff_route(ctx: Ctx, service: str, route: tuple[str, str]) -> None:
    expect, call = HTTP[service][route]

    answer, target = await call(ctx, {})
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "登录" in answer.json()["detail"]
    assert answer.json()["rule"] == "staff.unauthenticated"
    answer, _ = await call(ctx, {"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["rule"] == "staff.token_invalid"

    acts_on_a_task = route[0] == "post" and route[1].startswith("/v1/tasks/")
    if expect.wrong is not None:
        answer, target = await call(ctx, ctx.headers(expect.wrong))
        assert answer.status_code == 403, answer.text
        assert "无权" in answer.json()["detail"]
        # The reveal route asks the role with the rest of its rule (services/assignment/reveal).
        assert answer.json()["rule"] in ("staff.forbidden", "reveal.refused")
        if acts_on_a_task:
            assert (await ctx.stored(target)).version == 0  # no change was recorded
    if expect.other is not None:
        answer, target = await call(ctx, ctx.headers(expect.other))
        if expect.listing:
            assert answer.status_code == 200, answer.text
            assert target not in answer.text
        else:
            assert answer.status_code == 403, answer.text
            assert "不在您负责的" in answer.json()["detail"]
            assert answer.json()["rule"] in ("staff.out_of_scope", "reveal.refused")
            if acts_on_a_task:
                assert (await ctx.stored(target)).version == 0

    answer, target = await call(ctx, ctx.headers(expect.right))
    assert answer.status_code in (200, 201, 202), answer.text
    if expect.listing:
        assert target in answer.text
    if acts_on_a_task:
        # The audit trail names the person who acted.
        assert await ctx.actor_of_last_change(target) == person(*expect.right).audit_name


# --- gRPC -------------------------------------------------------------------------------------

# A method's call: makes its own target and calls with the metadata; returns the task id.
RpcCall = Callable[[Ctx, tuple[tuple[str, str], ...]], Awaitable[str]]


def directory(ctx: Ctx) -> directory_pb2_grpc.DirectoryStub:
    return directory_pb2_grpc.DirectoryStub(ctx.channels["assignment"])


def tasks(ctx: Ctx) -> tasks_pb2_grpc.TasksStub:
    return tasks_pb2_grpc.TasksStub(ctx.channels["escalation"])


async def rpc_read(method: str, ctx: Ctx, md: tuple[tuple[str, str], ...]) -> str:
    task_id = await ctx.task(A, TaskState.ASSIGNED)
    request: Any = (
        tasks_pb2.GetTaskRequest(task_id=task_id)
        if method == "GetTask"
        else tasks_pb2.ListTaskChangesRequest(task_id=task_id)
    )
    await getattr(tasks(ctx), method)(request, metadata=md)
    return task_id


async def rpc_act(method: str, state: TaskState, ctx: Ctx, md: tuple[tuple[str, str], ...]) -> str:
    measure = "quarantine" if state in MEASURED else None
    task_id = await ctx.task(A, state, measure)
    request: Any
    if method == "Acknowledge":
        request = tasks_pb2.AcknowledgeRequest(task_id=task_id, actor="anyone")
    elif method == "StartMeasure":
        request = tasks_pb2.StartMeasureRequest(
            task_id=task_id, measure=tasks_pb2.TASK_MEASURE_QUARANTINE
        )
    elif method == "Reassign":
        assignee = common_pb2.Responsible(
            level=common_pb2.CHAIN_LEVEL_CADRE, group_id="grp-p-cadreA2"
        )
        request = tasks_pb2.ReassignRequest(task_id=task_id, assignee=assignee, node_id="hA3")
    elif method == "RecordTestResult":
        request = tasks_pb2.RecordTestResultRequest(
            task_id=task_id, result=tasks_pb2.TEST_RESULT_NEGATIVE
        )
    elif method == "RecordOutcome":
        request = tasks_pb2.RecordOutcomeRequest(
            task_id=task_id, outcome=tasks_pb2.CASE_OUTCOME_LEFT, note="去往兰州市城关区"
        )
    elif method == "RequestEarlyEnd":
        request = tasks_pb2.TaskActionRequest(task_id=task_id, note="经核实系重复报告")
    elif method == "DecideEarlyEnd":
        request = tasks_pb2.DecideEarlyEndRequest(task_id=task_id, approve=True)
    else:
        request = tasks_pb2.TaskActionRequest(task_id=task_id, actor="anyone")
    await getattr(tasks(ctx), method)(request, metadata=md)
    return task_id


async def rpc_household_visit(ctx: Ctx, md: tuple[tuple[str, str], ...]) -> str:
    request = tasks_pb2.RecordHouseholdVisitRequest(
        household_id=A.household, outcome=tasks_pb2.VISIT_OUTCOME_MET
    )
    await tasks(ctx).RecordHouseholdVisit(request, metadata=md)
    return ""


async def rpc_deliveries(ctx: Ctx, md: tuple[tuple[str, str], ...]) -> str:
    stub = notify_pb2_grpc.NotifyStub(ctx.channels["notify"])
    await stub.GetDeliveries(notify_pb2.GetDeliveriesRequest(notification_id="n-1"), metadata=md)
    return ""


async def rpc_persons(ctx: Ctx, md: tuple[tuple[str, str], ...]) -> str:
    """The register's persons: a list (another node's are left out, not refused). Returns the
    report of A's household made for the call when the answer lists it, else ""."""
    report_id = new_id()
    db: Database = ctx.apps["assignment"].state.db
    async with db.session() as session:
        assignment_storage.record_placement(
            session, report_id=report_id, task_id=f"t-{report_id}", node_id=A.household,
            grid_id=A.place.grid_id, triage=False, assignee_id=A.cadre,
        )  # fmt: skip
        sealed.keep(session, sealed_report(report_id, Sealer.from_settings(ctx.settings)))
    request = directory_pb2.ListPersonsRequest(report_ids=[report_id, "r-none"])
    listed = set()
    async for batch in directory(ctx).ListPersons(request, metadata=md):
        listed |= {p.report_id for p in batch.persons}
    return report_id if report_id in listed else ""


async def rpc_internal(call: Callable[[Ctx], Awaitable[object]], ctx: Ctx, _: object) -> str:
    await call(ctx)
    return ""


async def health(service: str, ctx: Ctx, _: object) -> str:
    stub = health_pb2_grpc.HealthStub(ctx.channels[service])
    await stub.Check(health_pb2.HealthCheckRequest())
    return ""


TASKS = "/gridline.contracts.v1.Tasks/"
DIRECTORY = "/gridline.contracts.v1.Directory/"
# Staff methods and what is expected of them.
STAFF_RPC: dict[str, tuple[Expect, RpcCall]] = {
    f"{TASKS}GetTask": (READ, functools.partial(rpc_read, "GetTask")),
    f"{TASKS}ListTaskChanges": (READ, functools.partial(rpc_read, "ListTaskChanges")),
    f"{TASKS}Acknowledge": (ACT, functools.partial(rpc_act, "Acknowledge", TaskState.ASSIGNED)),
    f"{TASKS}RecordVisit": (ACT, functools.partial(rpc_act, "RecordVisit", TaskState.ACKNOWLEDGED)),
    f"{TASKS}StartMeasure": (ACT, functools.partial(rpc_act, "StartMeasure", TaskState.VISITED)),
    f"{TASKS}EndMeasure": (
        ACT, functools.partial(rpc_act, "EndMeasure", TaskState.UNDER_CONTROL)
    ),
    f"{TASKS}Close": (ACT, functools.partial(rpc_act, "Close", TaskState.VISITED)),
    f"{TASKS}SendToTriage": (ACT, functools.partial(rpc_act, "SendToTriage", TaskState.ASSIGNED)),
    f"{TASKS}Reassign": (REASSIGN, functools.partial(rpc_act, "Reassign", TaskState.ASSIGNED)),
    f"{TASKS}RecordTestResult": (
        ACT, functools.partial(rpc_act, "RecordTestResult", TaskState.UNDER_CONTROL),
    ),
    f"{TASKS}RecordOutcome": (ACT, functools.partial(rpc_act, "RecordOutcome", TaskState.VISITED)),
    f"{TASKS}RequestEarlyEnd": (
        ACT, functools.partial(rpc_act, "RequestEarlyEnd", TaskState.UNDER_CONTROL),
    ),
    f"{TASKS}DecideEarlyEnd": (
        DECIDE, functools.partial(rpc_act, "DecideEarlyEnd", TaskState.END_REQUESTED),
    ),
    f"{TASKS}RecordHouseholdVisit": (
        Expect((Role.CADRE, "gA"), (Role.HEALTH_CENTRE, "t1"), (Role.CADRE, "gB")),
        rpc_household_visit,
    ),
    f"{DIRECTORY}ListPersons": (
        Expect(COMMUNITY_A, (Role.OPERATOR, "c"), COMMUNITY_B, listing=True), rpc_persons,
    ),
    "/gridline.contracts.v1.Notify/GetDeliveries": (
        Expect((Role.OPERATOR, "c"), (Role.CADRE, "gA"), None), rpc_deliveries,
    ),
}  # fmt: skip
# Methods other Gridline services call (no staff token; mutual TLS decides who may), and the
# servers' own health and reflection: each is called without any credential and answers.
OPEN_RPC: dict[str, RpcCall] = {
    f"{DIRECTORY}ResolveAddress": functools.partial(
        rpc_internal,
        lambda ctx: directory(ctx).ResolveAddress(
            directory_pb2.ResolveAddressRequest(address="A小区1号楼1单元101室")
        ),
    ),
    f"{DIRECTORY}GetChain": functools.partial(
        rpc_internal,
        lambda ctx: directory(ctx).GetChain(directory_pb2.GetChainRequest(node_id="hA1")),
    ),
    f"{DIRECTORY}GetPlacement": functools.partial(
        rpc_internal, lambda ctx: placement_or_none(ctx)
    ),
    f"{DIRECTORY}GetHousehold": functools.partial(
        rpc_internal,
        lambda ctx: directory(ctx).GetHousehold(
            directory_pb2.GetHouseholdRequest(household_id="hA1")
        ),
    ),
    f"{DIRECTORY}ListCadreLoad": functools.partial(
        rpc_internal, lambda ctx: directory(ctx).ListCadreLoad(directory_pb2.ListCadreLoadRequest())
    ),
    f"{DIRECTORY}ListGridHouseholdCounts": functools.partial(
        rpc_internal,
        lambda ctx: directory(ctx).ListGridHouseholdCounts(
            directory_pb2.ListGridHouseholdCountsRequest()
        ),
    ),
    f"{DIRECTORY}SearchHouseholds": functools.partial(
        rpc_internal,
        lambda ctx: directory(ctx).SearchHouseholds(
            directory_pb2.SearchHouseholdsRequest(under_node_id="cA", text="A小区")
        ),
    ),
    f"{DIRECTORY}ListNodes": functools.partial(
        rpc_internal,
        lambda ctx: directory(ctx).ListNodes(directory_pb2.ListNodesRequest(node_ids=["hA1"])),
    ),
    f"{TASKS}FindTasks": functools.partial(
        rpc_internal,
        lambda ctx: tasks(ctx).FindTasks(tasks_pb2.FindTasksRequest(report_id="r-none")),
    ),
    "/grpc.health.v1.Health/Check": functools.partial(health, "escalation"),
    "/grpc.health.v1.Health/Watch": functools.partial(health, "escalation"),
    "/grpc.health.v1.Health/List": functools.partial(health, "escalation"),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": functools.partial(
        rpc_internal, lambda ctx: reflected(ctx.channels["notify"])
    ),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": functools.partial(
        rpc_internal, lambda ctx: reflected(ctx.channels["notify"])
    ),
}  # fmt: skip


async def placement_or_none(ctx: Ctx) -> None:
    """A report never placed: NOT_FOUND, which is an answer (no credential was asked for)."""
    try:
        await directory(ctx).GetPlacement(directory_pb2.GetPlacementRequest(report_id="r-none"))
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND


async def reflected(channel: grpc.aio.Channel) -> set[str]:
    """Every method the server behind `channel` serves, as gRPC reflection lists them."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask(request: reflection_pb2.ServerReflectionRequest) -> Any:
        async for response in stub.ServerReflectionInfo(iter([request])):
            return response
        raise AssertionError("reflection gave no answer")

    listed = await ask(reflection_pb2.ServerReflectionRequest(list_services=""))
    methods = set()
    for service in listed.list_services_response.service:
        found = await ask(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=service.name)
        )
        for raw in found.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            for declared in file.service:
                if f"{file.package}.{declared.name}" == service.name:
                    methods |= {f"/{service.name}/{m.name}" for m in declared.method}
    return methods


async def test_every_grpc_method_is_expected(ctx: Ctx) -> None:
    served = set()
    for channel in ctx.channels.values():
        served |= await reflected(channel)
    assert set(STAFF_RPC) & set(OPEN_RPC) == set()
    assert served <= set(STAFF_RPC) | set(OPEN_RPC), served - set(STAFF_RPC) - set(OPEN_RPC)
    assert {m for m in served if m.startswith("/gridline.")} == {
        m for m in [*STAFF_RPC, *OPEN_RPC] if m.startswith("/gridline.")
    }


@pytest.mark.parametrize("method", list(OPEN_RPC))
async def test_internal_method_answers_without_a_staff_token(ctx: Ctx, method: str) -> None:
    await OPEN_RPC[method](ctx, ())


async def refused(call: Awaitable[str]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    raise AssertionError("the call was not refused")


@pytest.mark.parametrize("method", list(STAFF_RPC))
async def test_staff_method(ctx: Ctx, method: str) -> None:
    expect, call = STAFF_RPC[method]
    assert await refused(call(ctx, ())) == grpc.StatusCode.UNAUTHENTICATED
    bad = (("authorization", "Bearer not-a-token"),)
    assert await refused(call(ctx, bad)) == grpc.StatusCode.UNAUTHENTICATED
    if expect.wrong is not None:
        assert await refused(call(ctx, ctx.metadata(expect.wrong))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    if expect.other is not None and expect.listing:
        # A listing's call returns its target only when the answer shows it.
        assert await call(ctx, ctx.metadata(expect.other)) == ""
    elif expect.other is not None:
        assert await refused(call(ctx, ctx.metadata(expect.other))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    task_id = await call(ctx, ctx.metadata(expect.right))
    if expect.listing:
        assert task_id
    if any(expect is acting for acting in (ACT, REASSIGN, DECIDE)):
        # The audit names the caller's token, not the request's `actor` field.
        assert await ctx.actor_of_last_change(task_id) == person(*expect.right).audit_name


# --- Scope ------------------------------------------------------------------------------------


async def listed(ctx: Ctx, who: RoleAt) -> set[str]:
    answer = await ctx.http["escalation"].get(
        "/v1/tasks", params={"limit": 1000}, headers=ctx.headers(who)
    )
    assert answer.status_code == 200, answer.text
    return {task["task_id"] for task in answer.json()}


async def test_a_community_never_sees_another_communitys_task(ctx: Ctx) -> None:
    mine, theirs = await ctx.task(A, TaskState.ASSIGNED), await ctx.task(B, TaskState.ASSIGNED)
    seen = await listed(ctx, COMMUNITY_A)
    assert mine in seen and theirs not in seen
    escalation = ctx.http["escalation"]
    for path in (f"/v1/tasks/{theirs}", f"/v1/tasks/{theirs}/changes"):
        answer = await escalation.get(path, headers=ctx.headers(COMMUNITY_A))
        assert answer.status_code == 403
        assert answer.json()["detail"] == "该任务不在您负责的社区（cmA）范围内，无权查看或处理"
    request = tasks_pb2.GetTaskRequest(task_id=theirs)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await tasks(ctx).GetTask(request, metadata=ctx.metadata(COMMUNITY_A))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "不在您负责的社区" in (refused.value.details() or "")


async def test_each_level_sees_what_lies_under_its_node(ctx: Ctx) -> None:
    a, b, c = [await ctx.task(spot, TaskState.ASSIGNED) for spot in (A, B, C)]
    under_measure = await ctx.task(B, TaskState.UNDER_CONTROL, "monitoring")
    elsewhere = await ctx.task(C, TaskState.UNDER_CONTROL, "quarantine")
    made = {a, b, c, under_measure, elsewhere}
    expected = {
        (Role.COUNTY_OFFICE, "c"): made,
        (Role.TOWNSHIP_OFFICE, "t1"): {a, b, under_measure},
        (Role.COMMUNITY_STAFF, "cmB"): {b, under_measure},
        (Role.LIAISON, "gA"): {a},
        (Role.CADRE, "gC"): {c, elsewhere},
        # The township health centre follows people under a measure in its township only.
        (Role.HEALTH_CENTRE, "t1"): {under_measure},
    }
    for who, visible in expected.items():
        assert await listed(ctx, who) & made == visible, who
    answer = await ctx.http["escalation"].get(
        f"/v1/tasks/{b}", headers=ctx.headers((Role.HEALTH_CENTRE, "t1"))
    )
    assert answer.status_code == 403
    assert "卫生院" in answer.json()["detail"]


async def test_a_placed_triage_task_moves_into_its_households_scope(ctx: Ctx) -> None:
    moment = now()
    task_id = new_id()
    async with ctx.tasks_db.session() as session:
        # A triage task waits at its community: its grid is the community (as assignment sends).
        session.add(
            escalation_storage.Task(
                task_id=task_id, report_id=f"r-{task_id}", node_id="cmA", grid_id="cmA",
                community_id="cmA", township_id="t1", triage=True, state=TaskState.TRIAGE,
                level=common_pb2.CHAIN_LEVEL_COMMUNITY, assignee_group_id="grp-p-cmA",
                assignee_level=common_pb2.CHAIN_LEVEL_COMMUNITY, summary="王* 地址待核实",
                report_accepted_at=moment, created_at=moment,
                assigned_at=moment,
            )
        )  # fmt: skip
    liaison: RoleAt = (Role.LIAISON, "gA")
    assert task_id not in await listed(ctx, liaison)
    escalation = ctx.http["escalation"]
    body = {"level": 1, "group_id": "grp-p-cadreA", "node_id": "hB1"}
    answer = await escalation.post(
        f"/v1/tasks/{task_id}:reassign", json=body, headers=ctx.headers(COMMUNITY_A)
    )
    assert answer.status_code == 403  # a household of another community
    answer = await escalation.post(
        f"/v1/tasks/{task_id}:reassign",
        json=body | {"node_id": "hA2"},
        headers=ctx.headers(COMMUNITY_A),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["grid_id"] == "gA"
    assert task_id in await listed(ctx, liaison)


async def test_zero_reports_are_filed_for_a_grid_of_the_directory(ctx: Ctx) -> None:
    body = {"day": DAY.isoformat(), "arrivals": 0, "under_control": 0, "abnormal": 0,
            "households_visited": 0}  # fmt: skip
    post = functools.partial(
        ctx.http["escalation"].post, "/v1/zero-reports", headers=ctx.headers(COMMUNITY_A)
    )
    unknown = await post(json=body | {"grid_id": "g-nowhere"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["rule"] == "node_id.unknown"
    not_a_grid = await post(json=body | {"grid_id": "cmA"})
    assert not_a_grid.status_code == 422
    assert "不是网格" in not_a_grid.json()["errors"][0]["detail"]
    filed = await post(json=body | {"grid_id": "gA"})
    assert filed.status_code == 201
    assert filed.json()["submitted_by"] == person(*COMMUNITY_A).audit_name


async def test_tokens_of_the_countys_identity_provider(ctx: Ctx) -> None:
    # Escalation as a county runs it with its own provider: the JWKS fetched over loopback.
    app = ctx.apps["escalation"]
    local = app.state.staff_tokens
    settings = ctx.settings.model_copy(
        update={"staff_oidc_issuer": jwks.ISSUER, "staff_oidc_jwks_url": "set below"}
    )
    with jwks.serving(jwks.Provider()) as provider:
        provider.add_key("k1")
        settings = settings.model_copy(update={"staff_oidc_jwks_url": provider.url})
        async with TokenVerifier.from_settings(settings) as external:
            app.state.staff_tokens = external
            try:
                task_id = await ctx.task(A, TaskState.ASSIGNED)
                get = functools.partial(ctx.http["escalation"].get, f"/v1/tasks/{task_id}")
                ok = await get(headers={"Authorization": f"Bearer {provider.token('k1')}"})
                assert ok.status_code == 200, ok.text
                other = provider.token("k1", role="community_staff", node_id="cmB")
                refused = await get(headers={"Authorization": f"Bearer {other}"})
                assert refused.status_code == 403
                # The local issuer is not trusted once the county's provider is.
                assert (await get(headers=ctx.headers(COMMUNITY_A))).status_code == 401
                # A token of another realm of the same provider is not ours.
                stranger = provider.token("k1", iss="https://idp.gaolan.example/realms/other")
                answer = await get(headers={"Authorization": f"Bearer {stranger}"})
                assert answer.status_code == 401
                assert answer.json()["detail"] == "登录凭证的签发方不受信任，请重新登录"
            finally:
                app.state.staff_tokens = local
