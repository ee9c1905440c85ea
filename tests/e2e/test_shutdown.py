"""Stopping is as dependable as starting: a bounded stop with the broker gone, and nothing left
behind when the supervisor dies."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import httpx

from gridline_cli.demo import build_reports
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform
from tests.e2e.promises import Up, assert_every_promise_kept
from tests.e2e.test_up_command import alive
from tests.helpers import eventually

BOUND_SECONDS = 10.0
REPORTS = 60


async def stop_within_the_bound(process: subprocess.Popen[bytes]) -> float:
    """SIGTERM, then the seconds until the process is gone."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, BOUND_SECONDS + 5)
    return time.monotonic() - started


async def readiness_after_sigterm(url: str, process: subprocess.Popen[bytes]) -> list[int]:
    """SIGTERM a ready service and look at its readiness until it refuses or is gone."""
    async with httpx.AsyncClient(timeout=2) as client:
        assert (await client.get(url)).status_code == 200
        # A connection kept open, as a load balancer's probe would.
        process.send_signal(signal.SIGTERM)
        statuses: list[int] = []

        async def refused() -> bool:
            try:
                statuses.append((await client.get(url)).status_code)
            except httpx.HTTPError:
                return True  # the port is closed: nothing is sent here any more
            return statuses[-1] == 503

        await eventually(refused, within=5)
    return statuses


async def test_a_stop_is_bounded_with_the_broker_gone_and_loses_nothing(
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
        # Readiness goes false the moment shutdown begins, before the service is gone.
        intake = platform.processes["intake"]
        statuses = await readiness_after_sigterm(f"{platform.endpoints.intake}/readyz", intake)
        assert 200 not in statuses
        await asyncio.to_thread(intake.wait, BOUND_SECONDS + 5)
        # Then the broker dies, and every consumer gets SIGTERM at once.
        assert platform.broker is not None and platform.broker.process is not None
        platform.broker.process.kill()
        platform.broker.process.wait()
        await asyncio.sleep(1.0)  # the services notice the broker is gone
        consumers = {n: p for n, p in platform.processes.items() if n != "intake"}
        took = await asyncio.gather(*(stop_within_the_bound(p) for p in consumers.values()))
        slow = {n: round(t, 1) for n, t in zip(consumers, took, strict=True)}
        assert max(took) <= BOUND_SECONDS + 1.5, f"stop took (s): {slow}"
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


def test_up_refuses_a_running_run_and_after_its_sigkill_starts_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Up(data_dir, tmp_path / "up-1.log")
    try:
        pids = first.endpoints()["pids"]
        assert set(pids) >= {"intake", "assignment", "escalation", "notify", "broker", "valkey"}
        # While it runs, a second `up` on the same data directory refuses to start.
        refused = Up(data_dir, tmp_path / "up-2.log")
        try:
            assert refused.process.wait(60) != 0
        finally:
            refused.close()
        assert "still run" in (tmp_path / "up-2.log").read_text()
        # SIGKILL of `up` itself: within 5 s nothing it started is left.
        first.process.kill()
        first.process.wait()
        deadline = time.monotonic() + 5
        while [pid for pid in pids.values() if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {name: pid for name, pid in pids.items() if alive(pid)}
        assert left == {}, f"still running 5 s after `gridline up` died: {left}"
    finally:
        first.close()
    third = Up(data_dir, tmp_path / "up-3.log")
    try:
        endpoints = third.endpoints()
        for name in ("intake", "assignment", "escalation", "notify"):
            assert httpx.get(f"{endpoints[name]}/readyz").status_code == 200
        third.process.send_signal(signal.SIGTERM)
        assert third.process.wait(120) == 0
    finally:
        third.close()
    assert "still run" not in (tmp_path / "up-3.log").read_text()
    assert not (data_dir / "run.json.tmp").exists()
