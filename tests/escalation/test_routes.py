"""Escalation's HTTP API on a real database and broker: actions, refusals, audit trail, reports."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import time, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gridline import problems
from gridline.db import Database
from gridline.staff.identity import Place
from gridline.staff.roles import Role
from gridline.timestamps import now
from services.escalation import routes
from services.escalation.check_ins import CheckInRules
from services.escalation.policy import every_level_after
from services.escalation.zero_reports import Schedule
from tests.assignment.support import LINKS
from tests.escalation.conftest import new_task
from tests.staff.tokens import COUNTY, bearer, person, verifier

POLICY = every_level_after(timedelta(minutes=30))


async def every_node_in_community_9(node_id: str) -> Place:
    """The Directory's answer for any node: a grid of community cm-9."""
    return Place(township_id="t-9", community_id="cm-9", grid_id=node_id)


@pytest.fixture
async def client(db: Database, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)  # errors answered as the services answer them
    app.include_router(routes.router)
    app.state.db, app.state.policy = db, POLICY
    app.state.check_ins, app.state.links = CheckInRules(), LINKS
    app.state.schedule = Schedule(time(20, 0), timedelta(hours=1))
    app.state.place_of = every_node_in_community_9
    app.state.staff_tokens = verifier(tmp_path)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://escalation",
        headers=bearer(tmp_path),  # the county office, unless a request says otherwise
    ) as http:
        yield http


async def test_actions_over_http_with_refusals_and_the_audit_trail(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    task = new_task(POLICY, now())
    async with db.session() as session:
        session.add(task)
    url = f"/v1/tasks/{task.task_id}"

    refused = await client.post(f"{url}:record-visit")
    assert refused.status_code == 409
    assert refused.json()["rule"] == "task.transition_refused"
    assert refused.json()["detail"] == "任务当前状态为「待接收」，不能记录入户核查（record_visit）"

    cadre = bearer(tmp_path, Role.CADRE, task.grid_id)
    ack = await client.post(f"{url}:acknowledge", json={"note": "收到"}, headers=cadre)
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert ack.json()["allowed_actions"] == [
        "record_visit", "send_to_triage", "reassign", "record_test", "record_left",
        "record_not_found",
    ]  # fmt: skip
    assert (await client.post(f"{url}:record-visit")).json()["state"] == "visited"
    bad = await client.post(f"{url}:start-measure", json={"measure": "vacation"})
    assert bad.status_code == 422
    started = await client.post(f"{url}:start-measure", json={"measure": "quarantine"})
    assert (started.json()["state"], started.json()["measure"]) == ("under_control", "quarantine")
    # Before its end, a measure ends only on a request with a reason the township approves.
    early = await client.post(f"{url}:end-measure")
    assert early.status_code == 422 and early.json()["rule"] == "task.change_refused"
    assert "尚未期满" in early.json()["detail"]
    no_reason = await client.post(f"{url}:request-early-end", headers=cadre)
    assert no_reason.status_code == 422 and "须说明理由" in no_reason.json()["detail"]
    asked = await client.post(
        f"{url}:request-early-end", json={"note": "经核实系重复报告"}, headers=cadre
    )
    assert asked.json()["state"] == "end_requested"
    # Deciding is the township office's or above: the cadre's role may not (403, not 422).
    by_cadre = await client.post(f"{url}:approve-early-end", headers=cadre)
    assert by_cadre.status_code == 403 and by_cadre.json()["rule"] == "staff.forbidden"
    assert "镇联防联控办" in by_cadre.json()["detail"]
    assert (await client.post(f"{url}:approve-early-end")).json()["state"] == "closed"

    trail = (await client.get(f"{url}/changes")).json()
    office = person(Role.COUNTY_OFFICE, COUNTY).audit_name
    assert [(c["action"], c["actor"], c["channel"]) for c in trail] == [
        ("acknowledge", person(Role.CADRE, task.grid_id).audit_name, "http"),
        ("record_visit", office, "http"),
        ("start_measure", office, "http"),
        ("request_early_end", person(Role.CADRE, task.grid_id).audit_name, "http"),
        ("approve_early_end", office, "http"),
    ]
    assert (await client.get("/v1/tasks/nope/changes")).status_code == 404
    assert (await client.post("/v1/tasks/nope:close")).status_code == 404


async def test_reassignment_needs_a_group(client: httpx.AsyncClient, db: Database) -> None:
    task = new_task(POLICY, now())
    async with db.session() as session:
        session.add(task)
    missing = await client.post(f"/v1/tasks/{task.task_id}:reassign", json={"level": 1})
    assert missing.status_code == 422
    done = await client.post(
        f"/v1/tasks/{task.task_id}:reassign", json={"level": 1, "group_id": "g-other"}
    )
    assert done.status_code == 200 and done.json()["assignee_group_id"] == "g-other"


async def test_a_zero_report_is_stored_and_a_second_replaces_it(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    body = {"grid_id": "grid-9", "day": "2026-01-20", "arrivals": 0, "under_control": 0,
            "abnormal": 0, "households_visited": 0}  # fmt: skip
    post = functools.partial(
        client.post, "/v1/zero-reports", headers=bearer(tmp_path, Role.LIAISON, "grid-9")
    )
    assert (await post(json=body)).status_code == 201
    # Typed visit counts are taken from earlier clients and ignored (computed from records).
    again = await post(json=body | {"arrivals": 3, "found_by_cadres": 2})
    assert again.status_code == 201
    stored = (await client.get("/v1/zero-reports", params={"day": "2026-01-20"})).json()
    assert [(r["grid_id"], r["arrivals"]) for r in stored] == [("grid-9", 3)]
    assert "found_by_cadres" not in stored[0] and "households_visited" not in stored[0]


async def test_test_results_and_outcomes_over_http(client: httpx.AsyncClient, db: Database) -> None:
    task = new_task(POLICY, now())
    async with db.session() as session:
        session.add(task)
    url = f"/v1/tasks/{task.task_id}"
    for action in ("acknowledge", "record-visit"):
        await client.post(f"{url}:{action}")
    await client.post(f"{url}:start-measure", json={"measure": "monitoring"})

    unknown = await client.post(f"{url}:record-test", json={"result": "maybe"})
    assert unknown.status_code == 422
    negative = {"result": "negative", "source_id": "lab-7"}
    assert (await client.post(f"{url}:record-test", json=negative)).json()["state"] == (
        "under_control"
    )
    await client.post(f"{url}:record-test", json=negative)  # the lab resends: kept once
    results = (await client.get(f"{url}/test-results")).json()
    assert [(r["test_day"], r["result"]) for r in results] == [(1, "negative")]

    nowhere = await client.post(f"{url}:record-left")
    assert (
        nowhere.status_code == 422
        and nowhere.json()["detail"] == "登记再次外出须注明去向（目的地）"
    )
    left = await client.post(f"{url}:record-left", json={"note": "兰州市城关区"})
    assert left.json()["state"] == "left" and left.json()["allowed_actions"] == []
    trail = (await client.get(f"{url}/changes")).json()
    assert [(c["action"], c["note"]) for c in trail][-3:] == [
        ("start_measure", ""),
        ("record_test", "核酸检测结果：阴性"),
        ("record_left", "兰州市城关区"),
    ]
