"""Stopping is as dependable as starting: a bounded stop with the broker gone, and nothing left
behind when the supervisor dies."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from gridline_cli.demo import build_reports
from gridline_cli.platform import Platform
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform
from tests.e2e.promises import Up, assert_every_promise_kept
from tests.e2e.test_up_command import alive
from tests.helpers import eventually

BOUND_SECONDS = 10.0
REPORTS = 60


async def test_sigterm_with_the_broker_gone_exits_within_the_bound_and_loses_nothing(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    data_dir = tmp_path / "data"
    platform = await asyncio.to_thread(start_platform, data_dir, webhook, ack_deadline=3600)
    try:
        assert platform.endpoints is not None
        accepted: list[str] = []
        async with httpx.AsyncClient(base_url=platform.endpoints.intake, timeout=10) as client:
            for report in build_reports(REPORTS, seed=18):
                response = await client.post("/v1/reports", json=report.body)
                assert response.status_code == 202, response.text
                accepted.append(response.json()["report_id"])
        inbox = Path(platform.endpoints.inbox)
        await assert_every_promise_kept(platform.endpoints.escalation, inbox, accepted)
        assert platform.broker is not None and platform.broker.process is not None
        platform.broker.process.kill()
        platform.broker.process.wait()
        await asyncio.sleep(1.0)  # the services notice the broker is gone
        for name, process in platform.processes.items():
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, BOUND_SECONDS + 5)
            took = time.monotonic() - started
            assert took <= BOUND_SECONDS + 1.5, f"{name} took {took:.1f} s to stop"
    finally:
        await asyncio.to_thread(platform.stop, 0)
    # A new start on the same data directory: nothing consumed is lost or applied twice.
    again = await asyncio.to_thread(start_platform, data_dir, webhook, ack_deadline=3600)
    try:
        assert again.endpoints is not None
        await asyncio.sleep(3.0)  # the replay to the new broker runs its course
        await assert_every_promise_kept(
            again.endpoints.escalation, Path(again.endpoints.inbox), accepted
        )
    finally:
        await asyncio.to_thread(again.stop)


async def test_readiness_goes_false_as_soon_as_shutdown_begins(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    platform: Platform = await asyncio.to_thread(
        start_platform, tmp_path / "data", webhook, ack_deadline=3600
    )
    try:
        assert platform.endpoints is not None
        url = f"{platform.endpoints.assignment}/readyz"
        async with httpx.AsyncClient(timeout=2) as client:
            assert (await client.get(url)).status_code == 200
            # Keep a connection open, as a load balancer's probe would.
            platform.processes["assignment"].send_signal(signal.SIGTERM)
            statuses: list[int] = []

            async def refused() -> bool:
                try:
                    statuses.append((await client.get(url)).status_code)
                except httpx.HTTPError:
                    return True  # the port is closed: nothing is sent here any more
                return statuses[-1] == 503

            await eventually(refused, within=5)
        assert 200 not in statuses[1:]
    finally:
        await asyncio.to_thread(platform.stop)


def test_sigkill_of_up_leaves_nothing_and_a_second_up_starts_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Up(data_dir, tmp_path / "up-1.log")
    try:
        pids = first.endpoints()["pids"]
        assert set(pids) >= {"intake", "assignment", "escalation", "notify", "broker", "valkey"}
        first.process.kill()
        first.process.wait()
        deadline = time.monotonic() + 5
        while [pid for pid in pids.values() if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {name: pid for name, pid in pids.items() if alive(pid)}
        assert left == {}, f"still running 5 s after `gridline up` died: {left}"
    finally:
        first.close()
    second = Up(data_dir, tmp_path / "up-2.log")
    try:
        endpoints = second.endpoints()
        for name in ("intake", "assignment", "escalation", "notify"):
            assert httpx.get(f"{endpoints[name]}/readyz").status_code == 200
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(120) == 0
    finally:
        second.close()
    assert "still run" not in (tmp_path / "up-2.log").read_text()


def test_up_refuses_to_start_over_a_run_that_still_runs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Up(data_dir, tmp_path / "up-1.log")
    try:
        first.endpoints()
        second = Up(data_dir, tmp_path / "up-2.log")
        try:
            assert second.process.wait(60) != 0
        finally:
            second.close()
        assert "still run" in (tmp_path / "up-2.log").read_text()
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(120) == 0
    finally:
        first.close()
    assert not os.path.exists(data_dir / "run.json.tmp")
