"""Escalation and notify killed with SIGKILL mid-batch while reports flow: no effect, task or
notice is lost or doubled (assignment's own case is in test_crash_recovery)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridline_cli.demo import build_reports
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform
from tests.e2e.promises import assert_every_promise_kept

REPORTS = 200
KILL_AFTER = 60


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, webhook: WebhookServer) -> Iterator[Any]:
    # A long deadline: only tasks and their first notices are counted, no escalations.
    platform = start_platform(tmp_path_factory.mktemp("consumer-crash"), webhook, ack_deadline=3600)
    yield platform
    platform.stop()


@pytest.mark.parametrize("service", ["escalation", "notify"])
async def test_a_consumer_killed_mid_batch_loses_and_doubles_nothing(
    running: Any, service: str
) -> None:
    endpoints = running.endpoints
    accepted: list[str] = []
    killed = asyncio.Event()

    async def post_all() -> None:
        async with httpx.AsyncClient(base_url=endpoints.intake, timeout=10) as client:
            for report in build_reports(REPORTS, seed={"escalation": 31, "notify": 32}[service]):
                response = await client.post("/v1/reports", json=report.body)
                assert response.status_code == 202, response.text
                accepted.append(response.json()["report_id"])
                if len(accepted) == KILL_AFTER:
                    running.kill_service(service)
                    killed.set()
                await asyncio.sleep(0.005)

    posting = asyncio.create_task(post_all())
    await asyncio.wait_for(killed.wait(), 60)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(running.start_service, service)
    await asyncio.to_thread(running.wait_ready, (service,), 60.0)
    await posting
    await assert_every_promise_kept(endpoints.escalation, Path(endpoints.inbox), accepted)
