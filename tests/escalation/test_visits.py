"""Household visits and visit rounds: the rules, the staff routes on a real Directory over gRPC,
and a round's deadline checked once on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from fastapi import FastAPI

from gridline import problems
from gridline.bus import topics
from gridline.bus.outbox import Outbox
from gridline.contracts.v1 import common_pb2, events_pb2, tasks_pb2, tasks_pb2_grpc
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.rpc import RpcServer, channel
from gridline.settings import Settings
from gridline.staff.identity import Forbidden, Place
from gridline.staff.roles import Role
from gridline.timestamps import SHANGHAI, now
from services.escalation import routes, storage, visit_flows, visit_routes
from services.escalation.policy import every_level_after
from services.escalation.servicer import TasksServicer
from services.escalation.visit_flows import DirectoryHouseholds, RoundWatcher
from services.escalation.visits import (
    REACHED,
    Outcome,
    RoundLevel,
    VisitRefused,
    check_round_time,
    check_runs_rounds,
    check_visit_time,
    round_level,
    short_round_text,
)
from services.escalation.zero_reports import Schedule
from tests.assignment.serving import directory_server
from tests.escalation.local import HOUSEHOLD, OTHER_HOUSEHOLD, county
from tests.escalation.records import published
from tests.helpers import eventually
from tests.staff.tokens import bearer, metadata, person, verifier

MOMENT = datetime(2026, 1, 26, 3, 0, tzinfo=UTC)


def test_nobody_home_is_no_visit_and_every_other_outcome_is() -> None:
    assert {"met", "refused", "moved_out", "new_arrival"} == REACHED


def test_a_visit_is_recorded_within_a_week_and_not_ahead_of_the_clock() -> None:
    check_visit_time(MOMENT - timedelta(days=7), MOMENT)
    check_visit_time(MOMENT + timedelta(minutes=5), MOMENT)  # a phone's clock running fast
    with pytest.raises(VisitRefused, match="晚于当前时间") as later:
        check_visit_time(MOMENT + timedelta(minutes=6), MOMENT)
    assert later.value.field == "visited_at"
    with pytest.raises(VisitRefused, match="须在7天内补录，1月19日 10:59的入户已不能补录"):
        check_visit_time(MOMENT - timedelta(days=7, minutes=1), MOMENT)


def test_a_round_covers_a_grid_or_a_community() -> None:
    assert round_level(Place("t", "cm", "g"), "g") is RoundLevel.GRID
    assert round_level(Place("t", "cm", ""), "cm") is RoundLevel.COMMUNITY
    for node_id, place in (("h", Place("t", "cm", "g")), ("t", Place("t", "", ""))):
        with pytest.raises(VisitRefused, match="不是网格或社区"):
            round_level(place, node_id)


def test_a_round_ends_after_it_starts_and_within_a_quarter() -> None:
    check_round_time(MOMENT, MOMENT + timedelta(days=92), MOMENT)
    for starts, deadline, said in (
        (MOMENT, MOMENT - timedelta(hours=1), "须晚于当前时间"),
        (MOMENT + timedelta(days=2), MOMENT + timedelta(days=1), "须晚于开始时间"),
        (MOMENT, MOMENT + timedelta(days=93), "最长92天"),
        (MOMENT - timedelta(days=8), MOMENT + timedelta(days=1), "最早可追溯到7天前"),
    ):
        with pytest.raises(VisitRefused, match=said):
            check_round_time(starts, deadline, MOMENT)


def test_community_staff_and_the_offices_above_open_rounds() -> None:
    for role in (Role.COMMUNITY_STAFF, Role.TOWNSHIP_OFFICE, Role.COUNTY_OFFICE):
        check_runs_rounds(person(role, "n"))
    for role in (Role.CADRE, Role.LIAISON, Role.HEALTH_CENTRE, Role.OPERATOR):
        with pytest.raises(Forbidden):
            check_runs_rounds(person(role, "n"))


def test_the_short_round_notice_names_the_round_and_the_households_left() -> None:
    title, body = short_round_text(
        "文化苑第五轮入户排摸", RoundLevel.GRID, datetime(2026, 1, 30, 12, tzinfo=UTC), 50, 54
    )
    assert title == "文化苑第五轮入户排摸未完成全覆盖"
    assert body == (
        "「文化苑第五轮入户排摸」已于1月30日 20:00截止，本网格在册 54 户，已入户 50 户，"
        "入户率 92.6%，尚有 4 户未入户（无人在家不计入）。请督促补访，做到不漏户、不漏人。"
    )


@pytest.fixture
async def directory(settings: Settings) -> AsyncIterator[DirectoryClient]:
    """A small county's Directory (one grid `g` of two households in community `cm`) over
    gRPC on loopback."""
    async with (
        directory_server(county(), settings) as target,
        DirectoryClient(target, timeout=2.0) as client,
    ):
        yield client


@pytest.fixture
async def client(
    db: Database, directory: DirectoryClient, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(visit_routes.router)
    app.state.db = db
    app.state.household_of, app.state.place_of = directory.household, directory.place
    app.state.visit_households = DirectoryHouseholds(directory)
    app.state.schedule = Schedule(time(20, 0), timedelta(hours=1))
    app.state.staff_tokens = verifier(tmp_path)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://escalation"
    ) as http:
        yield http


async def test_staff_record_visits_and_open_rounds_over_http(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    cadre, other_cadre = bearer(tmp_path, Role.CADRE, "g"), bearer(tmp_path, Role.CADRE, "g-2")
    community = bearer(tmp_path, Role.COMMUNITY_STAFF, "cm")
    entry = {"household_id": HOUSEHOLD, "outcome": "met", "submission_id": "phone-1"}

    done = await client.post("/v1/visits", json=entry, headers=cadre)
    assert done.status_code == 201, done.text
    visit = done.json()
    assert (visit["outcome_label"], visit["grid_id"], visit["channel"]) == ("已见面", "g", "http")
    assert visit["visitor"] == person(Role.CADRE, "g").audit_name
    again = await client.post("/v1/visits", json=entry, headers=cadre)
    assert again.json()["visit_id"] == visit["visit_id"]

    unit = await client.post("/v1/visits", json=entry | {"household_id": "u"}, headers=cadre)
    assert unit.status_code == 422
    [refusal] = unit.json()["errors"]
    assert refusal["rule"] == "visit.refused" and "目录中没有编号为“u”的户" in refusal["detail"]
    ahead = (now() + timedelta(hours=1)).isoformat()
    future = await client.post("/v1/visits", json=entry | {"visited_at": ahead}, headers=cadre)
    assert future.status_code == 422 and "晚于当前时间" in future.text
    elsewhere = await client.post("/v1/visits", json=entry, headers=other_cadre)
    assert elsewhere.status_code == 403 and elsewhere.json()["rule"] == "staff.out_of_scope"
    nobody = {"household_id": OTHER_HOUSEHOLD, "outcome": "nobody_home"}
    assert (await client.post("/v1/visits", json=nobody, headers=cadre)).status_code == 201

    today = now().astimezone(SHANGHAI).date().isoformat()
    listed = await client.get("/v1/visits", params={"day": today}, headers=community)
    assert [v["outcome_label"] for v in listed.json()] == ["无人在家", "已见面"]
    assert (await client.get("/v1/visits", params={"day": today}, headers=other_cadre)).json() == []

    deadline = (now() + timedelta(days=3)).isoformat()
    starts = (now() - timedelta(hours=1)).isoformat()
    body = {
        "name": "文化苑第五轮入户排摸",
        "node_id": "g",
        "starts_at": starts,
        "deadline_at": deadline,
    }
    refused = await client.post("/v1/visit-rounds", json=body, headers=cadre)
    assert refused.status_code == 403 and "社区及以上工作人员布置" in refused.text
    wrong = await client.post("/v1/visit-rounds", json=body | {"node_id": HOUSEHOLD},
                              headers=community)  # fmt: skip
    assert wrong.status_code == 422 and "不是网格或社区" in wrong.text
    opened = await client.post("/v1/visit-rounds", json=body, headers=community)
    assert opened.status_code == 201, opened.text
    assert opened.json()["state_label"] == "进行中"

    [listed_round] = (await client.get("/v1/visit-rounds", headers=cadre)).json()
    # One of the grid's two households reached: the other had nobody home.
    assert (listed_round["visited"], listed_round["households"]) == (1, 2)
    assert listed_round["coverage"] == 0.5


async def test_a_zero_report_with_typed_visit_counts_is_taken_and_they_are_ignored(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    body = {"grid_id": "g", "day": "2026-01-26", "arrivals": 1, "under_control": 0,
            "abnormal": 0, "households_visited": 40, "found_by_cadres": 1}  # fmt: skip
    liaison = bearer(tmp_path, Role.LIAISON, "g")
    stored = await client.post("/v1/zero-reports", json=body, headers=liaison)
    assert stored.status_code == 201, stored.text
    assert "households_visited" not in stored.json() and "found_by_cadres" not in stored.json()


async def test_a_short_round_goes_once_to_the_office_above_and_a_covered_one_does_not(
    db: Database, outbox: Outbox, settings: Settings, directory: DirectoryClient
) -> None:
    moment = now()
    office, cadre = person(Role.COMMUNITY_STAFF, "cm"), person(Role.CADRE, "g")
    first = moment - timedelta(hours=3)  # the grid's round: one hour from here
    second = moment - timedelta(hours=2)  # the community's: the hour after

    async def open_round(name: str, node_id: str, starts_at: datetime) -> storage.VisitRound:
        return await visit_flows.open_round(
            db, name=name, node_id=node_id, place=await directory.place(node_id),
            starts_at=starts_at, deadline_at=starts_at + timedelta(hours=1), staff=office,
            moment=starts_at,
        )  # fmt: skip

    short = await open_round("文化苑敲门行动", "g", first)
    covered = await open_round("三川社区每月遍访", "cm", second)
    for household, outcome, at in (
        (HOUSEHOLD, Outcome.MET, first + timedelta(minutes=10)),
        (OTHER_HOUSEHOLD, Outcome.NOBODY_HOME, first + timedelta(minutes=20)),
        (HOUSEHOLD, Outcome.MET, second + timedelta(minutes=10)),
        (OTHER_HOUSEHOLD, Outcome.MOVED_OUT, second + timedelta(minutes=20)),
        (OTHER_HOUSEHOLD, Outcome.MET, moment - timedelta(minutes=50)),  # after both deadlines
    ):
        await visit_flows.record_visit(
            db, visit_flows.Visit(household, outcome, at), await directory.household(household),
            cadre, channel="http", moment=moment,
        )  # fmt: skip

    async def checked() -> bool:
        async with db.session() as session:
            rows = [await session.get(storage.VisitRound, r.round_id) for r in (short, covered)]
        return all(r is not None and r.next_at is None for r in rows)

    households = DirectoryHouseholds(directory)
    async with RoundWatcher(db, households, directory.chain, 0.05):
        await eventually(checked, within=30)
    # The timer is done: another pass checks nothing again.
    assert await visit_flows.check_due_rounds(db, households, directory.chain, now()) == []

    async with db.session() as session:
        short_row = await session.get(storage.VisitRound, short.round_id)
        covered_row = await session.get(storage.VisitRound, covered.round_id)
    assert short_row and covered_row
    assert (short_row.visited, short_row.households, short_row.escalated) == (1, 2, True)
    assert (covered_row.visited, covered_row.households, covered_row.escalated) == (2, 2, False)

    records = await published(settings.kafka_bootstrap, topics.ESCALATIONS, after=outbox)
    [raised] = [
        e.message for e in records
        if isinstance(e.message, events_pb2.EscalationRaised)
        and e.message.reason == visit_flows.ROUND_SHORT_REASON
    ]  # fmt: skip
    assert raised.level == common_pb2.CHAIN_LEVEL_COMMUNITY
    assert raised.recipient.group_id == "grp-p-community" and raised.grid_id == "g"
    notices = await published(settings.kafka_bootstrap, topics.NOTIFICATIONS, after=outbox)
    [notice] = [
        e.message for e in notices
        if isinstance(e.message, events_pb2.Notification) and "敲门行动" in e.message.title
    ]  # fmt: skip
    assert notice.kind == events_pb2.NOTIFICATION_KIND_ESCALATION
    assert "本网格在册 2 户，已入户 1 户，入户率 50.0%，尚有 1 户未入户" in notice.body
    assert not [e for e in notices if "每月遍访" in getattr(e.message, "title", "")]


async def test_a_round_waits_while_the_directory_cannot_be_reached(db: Database) -> None:
    moment = now()
    visit_round = await visit_flows.open_round(
        db, name="文化苑第一轮入户排摸", node_id="g", place=Place("t", "cm", "g"),
        starts_at=moment - timedelta(hours=2), deadline_at=moment - timedelta(hours=1),
        staff=person(Role.COMMUNITY_STAFF, "cm"), moment=moment - timedelta(hours=2),
    )  # fmt: skip

    class Down:
        async def of(self, nodes: object) -> dict[str, int]:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )

    async def no_chain(node_id: str) -> list[common_pb2.Responsible]:
        raise AssertionError("not asked while the counts cannot be had")

    with pytest.raises(grpc.aio.AioRpcError):
        await visit_flows.check_due_rounds(db, Down(), no_chain, moment)
    async with db.session() as session:
        row = await session.get(storage.VisitRound, visit_round.round_id)
    assert row is not None and row.next_at is not None and row.visited is None


async def test_a_visit_over_grpc_names_the_caller_and_refuses_what_is_no_household(
    db: Database, directory: DirectoryClient, tmp_path: Path
) -> None:
    port = free_port()
    servicer = TasksServicer(
        db, every_level_after(timedelta(minutes=30)), directory.place, verifier(tmp_path),
        household_of=directory.household,
    )  # fmt: skip
    server = RpcServer.serving(
        "127.0.0.1", port, tasks_pb2_grpc.add_TasksServicer_to_server, servicer,
        tasks_pb2.DESCRIPTOR.services_by_name["Tasks"],
    )  # fmt: skip
    async with server:
        client = channel(f"127.0.0.1:{port}")
        stub = tasks_pb2_grpc.TasksStub(client)
        cadre = metadata(tmp_path, Role.CADRE, "g")
        request = tasks_pb2.RecordHouseholdVisitRequest(
            household_id=HOUSEHOLD, outcome=tasks_pb2.VISIT_OUTCOME_REFUSED, note="门口登记"
        )
        visit = await stub.RecordHouseholdVisit(request, metadata=cadre)
        assert (visit.outcome_label, visit.grid_id) == ("拒绝配合", "g")
        assert visit.visitor == person(Role.CADRE, "g").audit_name
        refusals = (
            (
                tasks_pb2.RecordHouseholdVisitRequest(
                    household_id="b", outcome=tasks_pb2.VISIT_OUTCOME_MET
                ),
                cadre,
            ),
            (tasks_pb2.RecordHouseholdVisitRequest(household_id=HOUSEHOLD), cadre),
            (request, metadata(tmp_path, Role.CADRE, "g-2")),
        )
        codes = []
        for refused, caller in refusals:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.RecordHouseholdVisit(refused, metadata=caller)
            codes.append((error.value.code(), error.value.details()))
        await client.close()
    expected = [
        (grpc.StatusCode.INVALID_ARGUMENT, "household_id: 目录中没有编号为“b”的户"),
        (grpc.StatusCode.INVALID_ARGUMENT, "outcome: 请选择入户结果（已见面、无人在家"),
        (grpc.StatusCode.PERMISSION_DENIED, "该户不在您负责的网格（g-2）范围内"),
    ]
    for (code, details), (want_code, start) in zip(codes, expected, strict=True):
        assert code == want_code and details.startswith(start), details
