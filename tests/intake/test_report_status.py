"""GET /v1/reports/{id}: what became of a report, from the services that own the answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridline.embedded import EmbeddedBroker, free_port
from gridline_cli.demo import build_reports
from gridline_cli.platform import Platform
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform
from tests.helpers import eventually
from tests.intake.conftest import running_intake
from tests.intake.samples import VALID_REPORT


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookServer
) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("intake-status"), webhook, ack_deadline=600)
    yield running
    running.stop()


async def test_a_report_is_followed_to_its_household_and_task(platform: Platform) -> None:
    assert platform.endpoints is not None
    body = next(r.body for r in build_reports(20, seed=4242) if r.expected_group)
    async with httpx.AsyncClient(base_url=platform.endpoints.intake, timeout=30) as client:
        posted = await client.post("/v1/reports", json=body)
        assert posted.status_code == 202, posted.text
        location = posted.headers["Location"]
        seen: dict[str, object] = {}

        async def followed_up() -> bool:
            answer = await client.get(location)
            assert answer.status_code == 200, answer.text
            seen.update(answer.json())
            # Escalation may hold the task a moment before assignment commits the placement.
            return bool(seen["status"] == "in_follow_up" and seen["placement"])

        await eventually(followed_up, within=30)
        unknown = await client.get("/v1/reports/0123456789abcdef0123456789abcdef")
    assert seen["source"] == body["source"]
    assert seen["unavailable"] == []
    placement = seen["placement"]
    assert isinstance(placement, dict) and placement["triage"] is False
    assert placement["node_id"]
    tasks = seen["tasks"]
    assert isinstance(tasks, list)
    [task] = tasks
    assert task["task_id"] == placement["task_id"]
    assert task["level"] == "cadre"
    assert unknown.status_code == 404


async def test_a_later_report_of_the_person_names_the_case_it_joined(
    platform: Platform, webhook: WebhookServer
) -> None:
    assert platform.endpoints is not None
    body = next(r.body for r in build_reports(20, seed=5151) if r.expected_group)
    again = {**body, "source": "cadre_visit", "cadre_id": "c-0042", "origin_risk": "high"}
    again.pop("source_record_id", None)
    async with httpx.AsyncClient(base_url=platform.endpoints.intake, timeout=30) as client:
        first = (await client.post("/v1/reports", json=body)).json()["report_id"]
        later = (await client.post("/v1/reports", json=again)).json()["report_id"]
        seen: dict[str, Any] = {}

        async def joined() -> bool:
            answer = await client.get(f"/v1/reports/{later}")
            assert answer.status_code == 200, answer.text
            seen.update(answer.json())
            return bool(seen["case"] and seen["case"]["task_state"])

        await eventually(joined, within=30)
        opened = (await client.get(f"/v1/reports/{first}")).json()

    case = seen["case"]
    assert case["report_id"] == first
    assert case["task_state"] == "assigned"
    assert case["grid_id"] == opened["placement"]["grid_id"] != ""
    assert case["task_id"] == seen["placement"]["task_id"] == opened["placement"]["task_id"]
    assert [t["task_id"] for t in seen["tasks"]] == [case["task_id"]]
    assert seen["status"] == "in_follow_up" and seen["source"] == "cadre_visit"
    assert opened["case"] is None

    async def told() -> bool:
        return any(
            r.body["kind"] == "NOTIFICATION_KIND_CASE_ENRICHED" for r in webhook.for_report(later)
        )

    await eventually(told, within=30)


async def test_unreachable_services_are_named_and_the_rest_answered(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    async with running_intake(
        broker.bootstrap, tmp_path, directory_target=nowhere, tasks_target=nowhere
    ) as (client, _):
        posted = await client.post("/v1/reports", json=VALID_REPORT)
        answer = await client.get(f"/v1/reports/{posted.json()['report_id']}")
        unknown = await client.get("/v1/reports/0123456789abcdef0123456789abcdef")
    assert answer.status_code == 200
    assert answer.json()["status"] == "accepted"
    assert answer.json()["source"] == "self_report"
    assert answer.json()["unavailable"] == ["directory", "tasks"]
    assert unknown.status_code == 503
    assert unknown.headers["Retry-After"] == "5"
    assert unknown.json()["rule"] == "report.status_unavailable"
    assert "directory、tasks 暂时无法查询" in unknown.json()["detail"]
