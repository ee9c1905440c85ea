"""Assignment killed with SIGKILL while reports flow: every accepted report yields one task."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridline_cli.demo import build_reports
from gridline_cli.platform import Platform
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform
from tests.helpers import eventually
from tests.staff.tokens import bearer

REPORTS = 150
KILL_AFTER = 40


@pytest.fixture(scope="module")
def crash_platform(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookServer
) -> Iterator[Platform]:
    # A long deadline: only the tasks themselves are counted here, no escalations.
    running = start_platform(tmp_path_factory.mktemp("crash"), webhook, ack_deadline=3600)
    yield running
    running.stop()


async def test_sigkilled_assignment_loses_and_doubles_nothing(
    crash_platform: Platform, webhook: WebhookServer
) -> None:
    endpoints = crash_platform.endpoints
    assert endpoints is not None
    accepted: list[str] = []
    killed = asyncio.Event()

    async def post_all() -> None:
        async with httpx.AsyncClient(base_url=endpoints.intake, timeout=10) as client:
            for report in build_reports(REPORTS, seed=99):
                response = await client.post("/v1/reports", json=report.body)
                assert response.status_code == 202, response.text
                accepted.append(response.json()["report_id"])
                if len(accepted) == KILL_AFTER:
                    crash_platform.kill_service("assignment")
                    killed.set()
                await asyncio.sleep(0.01)

    posting = asyncio.create_task(post_all())
    await asyncio.wait_for(killed.wait(), 60)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(crash_platform.start_service, "assignment")
    await asyncio.to_thread(crash_platform.wait_ready, ("assignment",), 60.0)
    await posting

    async def tasks_by_report() -> Counter[str]:
        async with httpx.AsyncClient(
            base_url=endpoints.escalation, timeout=10, headers=bearer(crash_platform.data_dir)
        ) as client:
            tasks = (await client.get("/v1/tasks", params={"limit": 1000})).json()
        return Counter(t["report_id"] for t in tasks)

    async def all_tasks_stored() -> bool:
        return len(await tasks_by_report()) >= len(accepted)

    await eventually(all_tasks_stored, within=90)
    counts = await tasks_by_report()
    assert set(counts) == set(accepted)
    assert set(counts.values()) == {1}

    # Every notice about the reports (the cadre's, and the micro-grid leader's) reached the inbox
    # exactly once, however often it was replayed; every report's first responsible was told.
    def notices() -> list[dict[str, str]]:
        lines = Path(endpoints.inbox).read_text(encoding="utf-8").splitlines()
        return [
            body for body in map(json.loads, lines)
            if body["kind"] == "NOTIFICATION_KIND_TASK_ASSIGNED"
        ]  # fmt: skip

    async def all_noticed() -> bool:
        return {n["report_id"] for n in notices()} >= set(accepted)

    await eventually(all_noticed, within=30)
    assert set(Counter(n["notification_id"] for n in notices()).values()) == {1}
