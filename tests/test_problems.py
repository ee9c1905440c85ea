"""One error shape for every service: each error of each kind, in each service, is an RFC 9457
problem (`application/problem+json`) valid against `gridline/problem.schema.json`, whose `type`
names its rule and whose `instance` is the request's path.

Assignment, escalation and notify are the access matrix's real apps (`tests.staff.
test_access_matrix`: started once without a broker, escalation asking assignment's Directory);
intake is its real app beside them (`tests.intake.local`). Every kind is provoked where it is
cheap: unknown route, wrong method, invalid body, no token, a token that does not hold, wrong
role, out of scope, body too large or too deep, rate limits, Redis down, an unexpected
exception, and the services' own refusals. The pages for people keep their HTML refusals.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from redis.exceptions import ConnectionError as RedisConnectionError

from gridline import problems
from gridline.settings import Settings
from gridline.staff.roles import Role
from services.escalation.domain import TaskState
from services.intake.app import create_app as intake_app
from services.intake.signing import signed_headers
from tests.intake.local import local_settings, started
from tests.intake.samples import FEED_RECORD, VALID_REPORT
from tests.intake.test_auth import post_signed
from tests.staff import test_access_matrix as matrix
from tests.staff.county import A

# The access matrix's started apps, for this module.
ctx = matrix.ctx

SCHEMA = problems.schema()
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
DEEP = b"[" * 10_000 + b"]" * 10_000
INTAKE_LIMIT = 2 * len(DEEP)
COUNTY: matrix.RoleAt = (Role.COUNTY_OFFICE, "c")
CADRE_A: matrix.RoleAt = (Role.CADRE, "gA")
NO_TOKEN: dict[str, str] = {}
BAD_TOKEN = {"Authorization": "Bearer not-a-token"}


def check(answer: httpx.Response, status: int, rule: str) -> dict[str, Any]:
    """The answer's problem, checked: status, media type, schema, `type`, `instance`."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == problems.MEDIA_TYPE
    body: dict[str, Any] = answer.json()
    VALIDATOR.validate(body)
    assert (body["status"], body["rule"]) == (status, rule), body
    assert body["type"] == problems.type_of(rule)
    assert body["instance"] == answer.request.url.raw_path.split(b"?")[0].decode()
    assert ("errors" in body) == (rule == problems.INVALID)
    return body


# --- assignment, escalation, notify ----------------------------------------------------------

# A provocation: sends its request with the context, and answers it with the status and rule
# it must carry (and, for a 422, the rule one of its fields broke).
Provoke = Callable[[matrix.Ctx], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Case:
    service: str
    name: str
    provoke: Provoke
    status: int
    rule: str
    field_rule: str | None = None


def send(
    service: str,
    method: str,
    path: str,
    who: matrix.RoleAt | dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Provoke:
    """A request to `service`, with the staff token of `who` (a role, or headers as given)."""

    async def provoke(ctx: matrix.Ctx) -> httpx.Response:
        token = who if isinstance(who, dict) else ctx.headers(who)
        sent = {**token, **(headers or {})}
        return await ctx.http[service].request(method, path, headers=sent, **kwargs)

    return provoke


def too_large(service: str, path: str) -> Provoke:
    async def provoke(ctx: matrix.Ctx) -> httpx.Response:
        body = b" " * (ctx.settings.max_body_bytes + 1)
        return await ctx.http[service].post(path, content=body, headers=ctx.headers(COUNTY))

    return provoke


def on_task(
    method: str, suffix: str, who: matrix.RoleAt, state: TaskState, **kwargs: Any
) -> Provoke:
    """A request about a new task of household A in `state`."""

    async def provoke(ctx: matrix.Ctx) -> httpx.Response:
        task_id = await ctx.task(A, state)
        url = f"/v1/tasks/{task_id}{suffix}"
        return await ctx.http["escalation"].request(method, url, headers=ctx.headers(who), **kwargs)

    return provoke


def common(service: str, staff_path: str, not_this: str) -> list[Case]:
    """What every staff service answers: an unknown route, a wrong method (`not_this` on the
    path), no token, a token that does not hold, a body too large."""
    return [
        Case(service, "unknown route", send(service, "GET", "/nowhere"), 404, "route.not_found"),
        Case(service, "wrong method", send(service, not_this, staff_path), 405,
             "method.not_allowed"),
        Case(service, "no token", send(service, "GET", staff_path, NO_TOKEN), 401,
             "staff.unauthenticated"),
        Case(service, "bad token", send(service, "GET", staff_path, BAD_TOKEN), 401,
             "staff.token_invalid"),
        Case(service, "too large", too_large(service, staff_path), 413, "body.too_large"),
    ]  # fmt: skip


ZERO_REPORT = {"day": "2026-01-20", "arrivals": 0, "under_control": 0, "abnormal": 0,
               "households_visited": 0}  # fmt: skip
CASES = [
    *common("assignment", "/v1/risk-areas", "DELETE"),
    Case("assignment", "wrong role", send("assignment", "POST", "/v1/risk-areas",
         (Role.TOWNSHIP_OFFICE, "t1"), json={"region_code": "310115", "level": "high"}),
         403, "staff.forbidden"),
    Case("assignment", "invalid body", send("assignment", "POST", "/v1/risk-areas", COUNTY,
         json={"region_code": "22", "level": "severe"}), 422, "request.invalid",
         "string_pattern_mismatch"),
    Case("assignment", "nested too deep", send("assignment", "POST", "/v1/risk-areas", COUNTY,
         content=DEEP, headers={"Content-Type": "application/json"}), 400, "body.too_deep"),
    Case("assignment", "no such person", send("assignment", "PUT", "/v1/cadres/p-nobody/duty",
         COUNTY, json={"on_leave": True}), 404, "person.not_found"),
    Case("assignment", "not a cadre", send("assignment", "PUT", "/v1/cadres/p-cmA/duty",
         COUNTY, json={"on_leave": False}), 422, "request.invalid", "duty.not_a_cadre"),
    Case("assignment", "backup not another cadre", send("assignment", "PUT",
         "/v1/cadres/p-cadreA/duty", COUNTY, json={"on_leave": True, "backup_id": "p-cadreA"}),
         422, "request.invalid", "duty.backup_invalid"),
    Case("assignment", "nothing to reveal", send("assignment", "POST",
         "/v1/reports/r-none/reveal", CADRE_A, json={"field": "phone", "purpose": "入户核查"}),
         404, "reveal.nothing"),
    *common("escalation", "/v1/tasks", "DELETE"),
    Case("escalation", "wrong role", send("escalation", "GET", "/v1/tasks", (Role.OPERATOR, "c")),
         403, "staff.forbidden"),
    Case("escalation", "out of scope", on_task("GET", "", matrix.COMMUNITY_B,
         TaskState.ASSIGNED), 403, "staff.out_of_scope"),
    Case("escalation", "no such task", send("escalation", "GET", "/v1/tasks/t-nowhere",
         matrix.COMMUNITY_A), 404, "task.not_found"),
    Case("escalation", "not in this state", on_task("POST", ":record-visit", CADRE_A,
         TaskState.ASSIGNED), 409, "task.transition_refused"),
    Case("escalation", "invalid body", on_task("POST", ":reassign", (Role.LIAISON, "gA"),
         TaskState.ASSIGNED, json={"level": "x"}), 422, "request.invalid", "missing"),
    Case("escalation", "invalid query", send("escalation", "GET", "/v1/tasks?limit=0",
         matrix.COMMUNITY_A), 422, "request.invalid", "greater_than_equal"),
    Case("escalation", "unknown grid", send("escalation", "POST", "/v1/zero-reports",
         matrix.COMMUNITY_A, json=ZERO_REPORT | {"grid_id": "g-nowhere"}), 422,
         "request.invalid", "node_id.unknown"),
    Case("escalation", "unreadable SMS", send("escalation", "POST", "/v1/check-ins:sms",
         json={"message_id": "m-1", "text": "你好"}), 422, "check_in.refused"),
    Case("escalation", "tampered link", send("escalation", "POST", "/t/t-1/check-in?e=1&s=x",
         json={"submission_id": "s-1"}), 403, "link.invalid"),
    *common("notify", "/v1/notifications/n-1", "POST"),
    Case("notify", "wrong role", send("notify", "GET", "/v1/notifications/n-1", CADRE_A), 403,
         "staff.forbidden"),
    Case("notify", "no such notification", send("notify", "GET", "/v1/notifications/n-none",
         (Role.OPERATOR, "c")), 404, "notification.not_found"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[f"{c.service}-{c.name}" for c in CASES])
async def test_each_staff_service_error_is_a_problem(ctx: matrix.Ctx, case: Case) -> None:
    body = check(await case.provoke(ctx), case.status, case.rule)
    if case.field_rule is not None:
        assert case.field_rule in {e["rule"] for e in body["errors"]}, body


async def test_field_paths_and_details_of_a_422(ctx: matrix.Ctx) -> None:
    answer = await ctx.http["escalation"].get(
        "/v1/tasks?limit=0", headers=ctx.headers(matrix.COMMUNITY_A)
    )
    body = check(answer, 422, "request.invalid")
    assert body["errors"] == [
        {"field": "query.limit", "rule": "greater_than_equal",
         "detail": "Input should be greater than or equal to 1"}
    ]  # fmt: skip
    # `detail` stays a string, in Chinese, naming the field.
    assert body["detail"] == "请求内容有1处不符合要求：query.limit：数值过小"
    assert body["title"] == problems.TITLES[422]


async def test_the_task_page_keeps_its_html_refusals(ctx: matrix.Ctx) -> None:
    refused = await ctx.http["escalation"].get("/t/t-1?e=1&s=x")
    assert refused.status_code == 403
    assert refused.headers["Content-Type"].startswith("text/html")
    assert "链接无效" in refused.text


# --- intake ----------------------------------------------------------------------------------


@dataclass
class Intake:
    app: FastAPI
    http: httpx.AsyncClient
    patch: pytest.MonkeyPatch

    def client(self, address: str, *, raise_errors: bool = True) -> httpx.AsyncClient:
        """Another client of the app, from its own address (the page's limit is per address)."""
        transport = httpx.ASGITransport(
            app=self.app, client=(address, 4000), raise_app_exceptions=raise_errors
        )
        return httpx.AsyncClient(transport=transport, base_url="http://intake")


@pytest.fixture(scope="module")
async def intake(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Intake]:
    settings = local_settings(
        Settings(
            data_dir=tmp_path_factory.mktemp("problems-intake"),
            intake_self_report_per_hour=1,
            intake_max_body_bytes=INTAKE_LIMIT,
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        async with started(intake_app, settings, patch) as (http, app, _):
            yield Intake(app, http, patch)


async def test_intake_route_errors_are_problems(intake: Intake) -> None:
    http = intake.http
    check(await http.get("/nowhere"), 404, "route.not_found")
    wrong_method = check(await http.get("/v1/reports:batch"), 405, "method.not_allowed")
    assert "POST" in wrong_method["detail"]
    too_large = await http.post("/v1/reports", content=b" " * (INTAKE_LIMIT + 1))
    check(too_large, 413, "body.too_large")
    deep = await http.post(
        "/v1/reports", content=DEEP, headers={"Content-Type": "application/json"}
    )
    check(deep, 400, "body.too_deep")
    # Nobody serves the Directory and Tasks this intake would ask.
    check(await http.get("/v1/reports/r-unknown"), 503, "report.status_unavailable")


async def test_intake_validation_errors_are_problems_with_their_fields(intake: Intake) -> None:
    single = await intake.http.post(
        "/v1/reports", json={**VALID_REPORT, "phone": "2381234567", "origin_risk": "x"}
    )
    body = check(single, 422, "request.invalid")
    assert [(e["field"], e["rule"]) for e in body["errors"]] == [
        ("phone", "phone.mainland_mobile"),
        ("origin_risk", "literal_error"),
    ]
    assert "phone：" in body["detail"] and "origin_risk：不是允许的取值" in body["detail"]
    batch = await intake.http.post(
        "/v1/reports:batch", content=b"[1]", headers={"Content-Type": "application/json"}
    )
    [error] = check(batch, 422, "request.invalid")["errors"]
    assert (error["field"], error["rule"]) == ("body", "batch_shape")
    # Records refused inside a batch are no error of the request: its 200 keeps their shape.
    partly = await intake.http.post(
        "/v1/reports:batch", json={"records": [{**FEED_RECORD, "phone": "2381234567"}]}
    )
    assert partly.status_code == 200
    [result] = partly.json()["results"]
    assert [(p["field"], p["rule"]) for p in result["problems"]] == [
        ("records[0].phone", "phone.mainland_mobile")
    ]
    assert set(result["problems"][0]) == {"field", "rule", "message"}


async def test_intake_signature_refusals_are_problems(intake: Intake) -> None:
    http, registry = intake.http, intake.app.state.integrators
    partial = await http.post("/v1/reports", json=FEED_RECORD, headers={"X-Gridline-Key": "k"})
    check(partial, 401, "signature.headers_missing")
    raw = json.dumps(FEED_RECORD).encode()
    unknown = signed_headers("key_unknown0", "s", "POST", "/v1/reports", raw, 0, "nonce-0001")
    check(
        await http.post("/v1/reports", content=raw, headers=unknown), 401, "signature.key_unknown"
    )

    key = await registry.create("problems", ["health_code_feed"])
    tampered = await post_signed(http, key, "/v1/reports", FEED_RECORD, tamper=True)
    check(tampered, 401, "signature.mismatch")
    stale = await post_signed(http, key, "/v1/reports", FEED_RECORD, timestamp=0)
    check(stale, 401, "signature.timestamp_skew")
    record = {**FEED_RECORD, "source_record_id": "problems-1"}
    assert (await post_signed(http, key, "/v1/reports", record, nonce="nonce-problem")).is_success
    replayed = await post_signed(http, key, "/v1/reports", record, nonce="nonce-problem")
    check(replayed, 401, "signature.nonce_reused")

    scans_only = await registry.create("scans", ["checkpoint_scan"])
    scoped = await post_signed(http, scans_only, "/v1/reports", FEED_RECORD)
    assert "health_code_feed" in check(scoped, 403, "source.not_allowed")["detail"]


async def test_the_self_report_pages_json_errors_are_problems_in_chinese(intake: Intake) -> None:
    async with intake.client("198.51.100.1") as resident:
        refused = await resident.post("/report", json={**VALID_REPORT, "phone": "2381234567"})
        [error] = check(refused, 422, "request.invalid")["errors"]
        # What the page's script shows under the field.
        assert error == {"field": "phone", "rule": "phone.mainland_mobile",
                         "detail": "请填写11位手机号码"}  # fmt: skip
        again = check(await resident.post("/report", json={}), 429, "rate_limit.exceeded")
        assert "秒后再试" in again["detail"]
    async with intake.client("198.51.100.2") as resident:
        [shape] = check(await resident.post("/report", json=[1]), 422, "request.invalid")["errors"]
        assert (shape["field"], shape["rule"]) == ("body", "form_shape")


async def test_redis_down_and_the_unexpected_are_problems(intake: Intake) -> None:
    limit = intake.app.state.self_report_limit

    async def redis_down(*_: object) -> None:
        raise RedisConnectionError("gone")

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug, with a secret")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limit, "take", redis_down)
        async with intake.client("198.51.100.3") as resident:
            down = await resident.post("/report", json=VALID_REPORT)
        check(down, 503, "redis.unavailable")
        assert down.headers["Retry-After"] == "5"
        patch.setattr(limit, "take", broken)
        async with intake.client("198.51.100.4", raise_errors=False) as resident:
            failed = await resident.post("/report", json=VALID_REPORT)
        assert "secret" not in check(failed, 500, "server.error")["detail"]


# --- the schema and the documents ------------------------------------------------------------


def test_the_schema_is_a_json_schema_and_rejects_other_shapes() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    valid = {"type": problems.type_of("x.y"), "title": "未找到", "status": 404, "detail": "无",
             "instance": "/v1/x", "rule": "x.y"}  # fmt: skip
    VALIDATOR.validate(valid)
    for other in (
        {"detail": "Not Found"},  # FastAPI's own
        {"detail": [{"loc": ["body"], "msg": "m", "type": "t"}]},  # FastAPI's own 422
        valid | {"type": "about:blank"},
        valid | {"status": 200},
        valid | {"errors": [{"loc": ["body"], "msg": "m", "type": "t"}]},
        valid | {"unknown": 1},
    ):
        assert not VALIDATOR.is_valid(other), other


async def test_every_documented_error_answer_is_a_problem(ctx: matrix.Ctx, intake: Intake) -> None:
    embedded = {k: v for k, v in SCHEMA.items() if k not in ("$schema", "$id")}
    for app in [*ctx.apps.values(), intake.app]:
        document = app.openapi()
        assert document["components"]["schemas"][problems.COMPONENT] == embedded
        assert "HTTPValidationError" not in json.dumps(document)
        for path in document["paths"].values():
            for operation in path.values():
                responses = operation["responses"]
                assert "default" in responses
                for code, response in responses.items():
                    if code == "default" or code[0] in "45":
                        assert list(response["content"]) == [problems.MEDIA_TYPE], code


def test_the_schema_file_is_where_the_docs_say() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
    assert "gridline/problem.schema.json" in docs.read_text(encoding="utf-8")
