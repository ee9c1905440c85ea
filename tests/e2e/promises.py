"""What the stop and crash tests share: a `gridline up` process, and the check that every
report answered 202 has one task and reached its groups exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import eventually
from tests.staff.tokens import bearer

GRIDLINE = Path(sys.executable).parent / "gridline"


class Up:
    """One `gridline up` process on a data directory."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.run_file = data_dir / "run.json"
        self._started = time.time()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLINE_")}
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [str(GRIDLINE), "up", "--data-dir", str(data_dir), "--ack-deadline", "3600"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        self.log_path = log

    def endpoints(self, timeout: float = 180) -> dict[str, Any]:
        """run.json once every service is ready."""
        deadline = time.monotonic() + timeout
        while not (self.run_file.exists() and self.run_file.stat().st_mtime >= self._started):
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "gridline up did not come up"
            time.sleep(0.2)
        found: dict[str, Any] = json.loads(self.run_file.read_text())
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


async def all_tasks(escalation: str, data_dir: Path) -> Counter[str]:
    """Tasks by report id, every page of them, as the county office reads them."""
    counts: Counter[str] = Counter()
    headers = bearer(data_dir)
    async with httpx.AsyncClient(base_url=escalation, timeout=30, headers=headers) as client:
        offset = 0
        while True:
            page = (await client.get("/v1/tasks", params={"limit": 1000, "offset": offset})).json()
            counts.update(task["report_id"] for task in page)
            if len(page) < 1000:
                return counts
            offset += 1000


def first_notices(inbox: Path) -> list[dict[str, Any]]:
    """The notices of new tasks in the inbox, one per delivered line."""
    if not inbox.exists():
        return []
    notices = []
    for line in inbox.read_text(encoding="utf-8").splitlines():
        try:
            body = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill
        if body.get("kind") == "NOTIFICATION_KIND_TASK_ASSIGNED":
            notices.append(body)
    return notices


async def assert_every_promise_kept(escalation: str, inbox: Path, accepted: list[str]) -> None:
    """One task per accepted report, and its notices delivered exactly once each."""

    # The inbox lies in the platform's data directory, whose local issuer the services trust.
    data_dir = inbox.parent

    async def all_placed() -> bool:
        return set(await all_tasks(escalation, data_dir)) >= set(accepted)

    await eventually(all_placed, within=180)
    counts = await all_tasks(escalation, data_dir)
    assert {report: counts[report] for report in accepted} == dict.fromkeys(accepted, 1)

    async def all_told() -> bool:
        return {n["report_id"] for n in first_notices(inbox)} >= set(accepted)

    await eventually(all_told, within=120)
    assert set(Counter(n["notification_id"] for n in first_notices(inbox)).values()) == {1}
