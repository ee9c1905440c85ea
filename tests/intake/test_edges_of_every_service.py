"""Every service's POST and PUT routes take odd input without a 5xx, and refuse a body over its
limit with 413: numbers in other scripts' digits, numbers JSON cannot write back, 10,000 levels
of nesting, lone surrogates, and the rest, put into each field of a valid body in turn.

The four real apps, started without a broker (`tests.intake.local`); escalation asks the real
Directory. A route with no valid body here fails the test, so a new route cannot slip by.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from gridline.embedded import EmbeddedValkey
from gridline.settings import Settings
from gridline.staff.roles import Role
from services.assignment.app import create_app as assignment_app
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from services.notify.app import create_app as notify_app
from tests.assignment.serving import directory_server
from tests.escalation.local import HOUSEHOLD, county
from tests.intake.local import local_settings, started
from tests.intake.samples import FEED_RECORD, VALID_REPORT
from tests.staff.tokens import bearer

# JSON text put in place of a field's value.
ODD = [
    '"١٢"',  # Arabic-Indic digits
    '"²"',  # a digit to str.isdigit, not to int
    '"１２"',  # full-width digits
    '"٣٦.٨"',
    "1e400",  # read as infinity
    "-1e400",
    "NaN",
    "-Infinity",
    "1" + "0" * 400,
    '"\\u0000"',
    '"\\ud800"',  # a lone surrogate
    '"\\u202e\\u200b"',
    "[]",
    "{}",
    "null",
    "true",
    '"' + "9" * 5_000 + '"',
]
DEEP = "[" * 10_000 + "]" * 10_000

ACTION = {"note": "已电话联系"}
# A valid body of each route; {} for a route that reads none.
BODIES: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
    "intake": {
        ("post", "/v1/reports"): FEED_RECORD,
        ("post", "/v1/reports:batch"): {"records": [FEED_RECORD]},
        ("post", "/report"): {k: v for k, v in VALID_REPORT.items() if k != "source"},
        ("post", "/v1/staff/reports"): {
            **VALID_REPORT,
            "source": "cadre_visit",
            "cadre_id": "p-cadre",
            "origin_risk": "low",
        },
    },
    "assignment": {
        ("put", "/v1/cadres/{person_id}/duty"): {"on_leave": True, "backup_id": "p-b"},
        ("post", "/v1/risk-areas"): {"region_code": "310115", "level": "high"},
        ("post", "/v1/reports/{report_id}/reveal"): {"field": "phone", "purpose": "入户核查"},
    },
    "escalation": {
        **{
            ("post", f"/v1/tasks/{{task_id}}:{action}"): ACTION
            for action in (
                "acknowledge",
                "record-visit",
                "end-measure",
                "close",
                "send-to-triage",
                "request-early-end",
                "approve-early-end",
                "refuse-early-end",
                "record-left",
                "record-not-found",
                "to-hospital",
                "to-isolation",
            )
        },
        ("post", "/v1/tasks/{task_id}:record-test"): {
            **ACTION,
            "result": "positive",
            "source_id": "lab-20260120-001",
        },
        ("post", "/v1/tasks/{task_id}:start-measure"): {**ACTION, "measure": "quarantine"},
        ("post", "/v1/tasks/{task_id}:reassign"): {
            **ACTION,
            "level": 1,
            "group_id": "grp-p-cadre",
            "node_id": HOUSEHOLD,
        },
        ("post", "/v1/zero-reports"): {
            "grid_id": "g",
            "day": "2026-01-20",
            "arrivals": 2,
            "under_control": 1,
            "abnormal": 0,
            "households_visited": 9,
            "found_by_cadres": 1,
        },
        ("post", "/v1/check-ins:sms"): {"message_id": "sms-1", "text": "1A2B3C4D 36.8"},
        ("post", "/v1/visits"): {
            "household_id": HOUSEHOLD,
            "outcome": "met",
            "visited_at": "2026-01-20T10:00:00+08:00",
            "note": "已见面",
            "submission_id": "v-1",
        },
        ("post", "/v1/visit-rounds"): {
            "name": "文化苑第五轮入户排摸",
            "node_id": "g",
            "starts_at": "2026-01-20T08:00:00+08:00",
            "deadline_at": "2026-01-25T20:00:00+08:00",
        },
        ("post", "/t/{task_id}/check-in"): {
            "submission_id": "s-1",
            "temperature": 36.8,
            "symptoms": ["咳嗽"],
        },
        ("post", "/t/{task_id}/{action}"): {},
    },
    "notify": {},
}
# Routes outside the OpenAPI document (the pages).
PAGES = {
    "intake": {("post", "/report")},
    "escalation": {("post", "/t/{task_id}/check-in"), ("post", "/t/{task_id}/{action}")},
}
APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "intake": intake_app,
    "assignment": assignment_app,
    "escalation": escalation_app,
    "notify": notify_app,
}


@pytest.fixture(scope="module")
def valkey() -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey()
    server.start()
    yield server
    server.stop()


def bodies(valid: dict[str, Any]) -> Iterator[str]:
    """The valid body with each field, and every field at once, replaced by each odd value;
    then nesting too deep for the JSON reader, alone and inside the body."""
    for odd in ODD:
        for name in valid:
            yield json.dumps({**valid, name: "\0"}).replace('"\\u0000"', odd, 1)
        yield "{" + ", ".join(f"{json.dumps(name)}: {odd}" for name in valid) + "}"
    yield DEEP
    for name in valid or ["records"]:
        yield json.dumps({**valid, name: "\0"}).replace('"\\u0000"', DEEP, 1)


async def streamed(size: int) -> AsyncIterator[bytes]:
    """A body of `size` bytes sent in chunks, its length declared nowhere."""
    for start in range(0, size, 1_000):
        yield b" " * min(1_000, size - start)


def staff(path: str, data_dir: Path) -> dict[str, str]:
    """A token that may use the route, so that odd input reaches it: a liaison of the grid for
    its zero-report and the cadre's own arrivals, else the county office (other services
    ignore it)."""
    if path in ("/v1/zero-reports", "/v1/staff/reports"):
        return bearer(data_dir, Role.LIAISON, "g")
    return bearer(data_dir)


def concrete(path: str) -> str:
    return path.format(
        task_id="t-1", person_id="p-a", action="acknowledge", notification_id="n-1", report_id="r-1"
    )


@pytest.mark.parametrize("service", list(APPS))
async def test_odd_input_to_every_route_is_refused_without_a_5xx(
    service: str, tmp_path: Path, valkey: EmbeddedValkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each request comes through the (trusted) proxy from an address of its own, so that the
    # self-report page's per-address allowance never answers in place of the route.
    settings = local_settings(
        Settings(data_dir=tmp_path, redis_url=valkey.url, trusted_proxies="127.0.0.1")
    )
    async with (
        directory_server(county(), Settings(data_dir=tmp_path / "directory")) as directory,
        started(
            APPS[service],
            settings.model_copy(update={"directory_target": directory}),
            monkeypatch,
        ) as (client, app, _),
    ):
        documented = {
            (method, path)
            for path, methods in app.openapi()["paths"].items()
            for method in methods
            if method in ("post", "put", "patch", "delete")
        }
        assert documented | PAGES.get(service, set()) == set(BODIES[service])
        failures = []
        answered: set[int] = set()
        for (method, path), valid in BODIES[service].items():
            for n, body in enumerate(bodies(valid)):
                answer = await client.request(
                    method,
                    concrete(path),
                    content=body.encode(errors="surrogatepass"),
                    headers={
                        "Content-Type": "application/json",
                        "X-Forwarded-For": f"198.18.{n // 250}.{n % 250}",
                        **staff(path, tmp_path),
                    },
                )
                answered.add(answer.status_code)
                if answer.status_code >= 500:
                    failures.append((path, body[:60], answer.status_code, answer.text[:200]))
    assert failures == []
    assert 429 not in answered


@pytest.mark.parametrize("service", list(APPS))
async def test_a_body_over_the_limit_is_a_413_in_every_service(
    service: str, tmp_path: Path, valkey: EmbeddedValkey, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = local_settings(
        Settings(
            data_dir=tmp_path, redis_url=valkey.url, max_body_bytes=2_000,
            intake_max_body_bytes=3_000, intake_batch_max_body_bytes=4_000,
        )
    )  # fmt: skip
    limits = {"/v1/reports:batch": 4_000} if service == "intake" else {}
    default = 3_000 if service == "intake" else 2_000
    # A route that reads no body (all of notify's) refuses one over the limit all the same,
    # by its declared length; one that reads it, also a body streamed without a length.
    routes = BODIES[service] or {("post", "/v1/notifications/{notification_id}"): {}}
    # Not the address the other test spent its self-report allowance from.
    address = ("192.0.2.50", 4000)
    async with started(APPS[service], settings, monkeypatch, address) as (client, _, _):
        for (method, path), valid in routes.items():
            limit = limits.get(path, default)
            for sent in (b" " * (limit + 1), streamed(limit + 1))[: 2 if valid else 1]:
                answer = await client.request(method, concrete(path), content=sent)
                assert answer.status_code == 413, (path, answer.text)
                assert answer.json()["rule"] == "body.too_large"
                assert f"请求内容超过{limit}字节的上限" in answer.json()["detail"]
            if path in limits:
                # Within its own limit, though over the service's.
                padded = b'{"records": []}' + b" " * default
                assert (await client.request(method, path, content=padded)).status_code == 422


async def test_odd_task_links_are_refused_without_a_5xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `²` (a digit to isdigit), another script's digits, text compare_digest takes no part of.
    odd = ["%C2%B2", "%D9%A1%D9%A2", "%EF%BC%91", "%C3%A9", "%F0%9F%98%80", "-1", ""]
    settings = local_settings(Settings(data_dir=tmp_path))
    async with started(escalation_app, settings, monkeypatch) as (client, _, _):
        for e in odd:
            for s in odd:
                query = f"e={e}&s={s}"
                answers = [
                    await client.get(f"/t/t-1?{query}"),
                    await client.post(f"/t/t-1/acknowledge?{query}"),
                    await client.post(f"/t/t-1/check-in?{query}", json={"submission_id": "s-1"}),
                ]
                assert [a.status_code for a in answers] == [403, 403, 403], query
