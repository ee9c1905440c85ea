"""A 202 is a promise through any stop: Ctrl-C of `gridline up` during a surge, and SIGKILL of
its whole process tree (broker included), each followed by `gridline up` on the same data dir.

After the restart every report answered 202 has exactly one task and its first notice reached
the inbox exactly once: the embedded broker forgot everything, so this holds only because every
service replays what it produced (`gridline.bus.outbox`) and every consumer dedups.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gridline_cli.demo import build_reports
from tests.e2e.promises import Up, assert_every_promise_kept

SURGE_RATE = 600  # reports offered per second, above the 500
SURGE_REPORTS = 2_400
STOP_AFTER = 900  # reports answered 202 before the stop
IN_FLIGHT = 24


async def surge(intake: str, stop_now: asyncio.Event) -> list[str]:
    """Offer reports at SURGE_RATE; return the ids answered 202. Sets `stop_now` at STOP_AFTER
    and keeps offering until intake stops answering."""
    bodies = iter(report.body for report in build_reports(SURGE_REPORTS, seed=4242))
    accepted: list[str] = []
    interval = IN_FLIGHT / SURGE_RATE

    async def worker(client: httpx.AsyncClient) -> None:
        for body in bodies:
            started = time.monotonic()
            try:
                response = await client.post("/v1/reports", json=body)
            except httpx.HTTPError:
                return  # intake has stopped taking reports
            if response.status_code == 202:
                accepted.append(response.json()["report_id"])
                if len(accepted) >= STOP_AFTER:
                    stop_now.set()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    limits = httpx.Limits(max_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=intake, timeout=10, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(IN_FLIGHT)))
    return accepted


async def stop_during_a_surge(tmp_path: Path, stop: Callable[[Up, dict[str, Any]], None]) -> int:
    """`gridline up`, a surge, `stop` once STOP_AFTER reports were answered 202, then `gridline
    up` again on the same data directory: every promise is kept. Returns the first's exit."""
    data_dir = tmp_path / "data"
    first = Up(data_dir, tmp_path / "up-1.log")
    try:
        endpoints = first.endpoints()
        stop_now = asyncio.Event()
        surging = asyncio.create_task(surge(endpoints["intake"], stop_now))
        await asyncio.wait_for(stop_now.wait(), 60)
        stop(first, endpoints)
        accepted = await surging
        exit_code = await asyncio.to_thread(first.process.wait, 120)
    finally:
        first.close()
    assert len(accepted) >= STOP_AFTER

    second = Up(data_dir, tmp_path / "up-2.log")
    try:
        endpoints = second.endpoints()
        await assert_every_promise_kept(endpoints["escalation"], Path(endpoints["inbox"]), accepted)
        second.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.process.wait, 120) == 0
    finally:
        second.close()
    return exit_code


async def test_ctrl_c_during_a_surge_loses_nothing(tmp_path: Path) -> None:
    def ctrl_c(up: Up, _: dict[str, Any]) -> None:
        up.process.send_signal(signal.SIGINT)

    assert await stop_during_a_surge(tmp_path, ctrl_c) == 0
    log = (tmp_path / "up-1.log").read_text()
    assert "stopped; nothing left running" in log
    assert "not a clean shutdown" not in log


async def test_sigkill_of_the_whole_tree_during_a_surge_loses_nothing(tmp_path: Path) -> None:
    def power_cut(up: Up, endpoints: dict[str, Any]) -> None:
        # Everything at once: no process stops gracefully, the broker forgets all it held.
        for pid in [up.process.pid, *endpoints["pids"].values()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    await stop_during_a_surge(tmp_path, power_cut)
