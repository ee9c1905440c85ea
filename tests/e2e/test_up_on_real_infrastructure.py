"""`gridline up` on real infrastructure is a county's run, not the demo: it starts with an empty
directory, `gridline directory import` loads docs/directory.md's example into the database it
runs on, and the running assignment places reports by it under the documented deadline policy."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from typer.testing import CliRunner

from gridline.contracts.v1 import common_pb2
from gridline.embedded import EmbeddedBroker
from gridline_cli.deadlines import SHIPPED_DEADLINES
from gridline_cli.main import app
from services.escalation.policy import load_policy
from services.intake.domain import id_check_char
from tests.conftest import REDIS_URL
from tests.staff.tokens import bearer

GRIDLINE = Path(sys.executable).parent / "gridline"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "directory.csv"
# A household of the example, written as residents write it, and who must get its task.
ADDRESS = "甘肃省兰州市榆中县城关镇兴隆社区栖云小区1号楼1单元101室"
HOUSEHOLD = "yz-cg-xl-qy-b1-u1-101"
CADRE_GROUP = "grp-c01"
# The documented policy's first deadline of a medium-risk arrival, in earnest (not the demo's).
FIRST_MEDIUM_DEADLINE = (
    load_policy(SHIPPED_DEADLINES, timedelta(minutes=30))
    .steps(common_pb2.RISK_LEVEL_MEDIUM)[0]
    .after
)
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], within: float = 30.0) -> T:
    """The first value `probe` gives that is not None, polling; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        time.sleep(0.2)
    return found


def directory_nodes(assignment: str) -> int:
    """The nodes the running assignment places by, from its metrics."""
    for line in httpx.get(f"{assignment}/metrics").text.splitlines():
        if line.startswith("gridline_assignment_directory_nodes "):
            return int(float(line.split()[1]))
    raise AssertionError("assignment exports no gridline_assignment_directory_nodes")


@pytest.fixture
def separate_broker(tmp_path: Path) -> Iterator[str]:
    """An embedded broker of this test's own, started apart from `gridline up`: its address."""
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    yield broker.bootstrap
    broker.stop()


def report_body() -> dict[str, Any]:
    """A health-code feed record of a new person at the example's household."""
    first17 = f"620123{random.randint(1950, 2000)}0101{random.randrange(1000):03d}"
    return {
        "source": "health_code_feed",
        "source_record_id": f"e2e-{uuid.uuid4().hex}",
        "name": "张伟",
        "id_number": first17 + id_check_char(first17),
        "phone": "13812345678",
        "origin_region_code": "310115",
        "origin_name": "上海市浦东新区",
        "origin_risk": "medium",
        "arrived_at": "2022-01-28T18:40:00+08:00",
        "address": ADDRESS,
    }


def test_up_on_real_infrastructure_takes_the_imported_directory(
    tmp_path: Path, postgres_database: str, separate_broker: str
) -> None:
    if not REDIS_URL:
        pytest.skip("GRIDLINE_TEST_REDIS_URL is not set")
    data_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLINE_")}
    # The broker is tansu, which refuses idempotent producers: told as an operator would.
    env["GRIDLINE_KAFKA_IDEMPOTENCE"] = "false"
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [str(GRIDLINE), "up", "--data-dir", str(data_dir), "--kafka", separate_broker,
             "--database-url", postgres_database, "--redis-url", REDIS_URL],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        run_file = data_dir / "run.json"

        def started() -> dict[str, Any] | None:
            assert up.poll() is None, log_path.read_text()[-3000:]
            return json.loads(run_file.read_text()) if run_file.exists() else None

        endpoints = wait_for("gridline up started", started, within=90)
        assert endpoints["settings"]["GRIDLINE_DATABASE_URL"] == postgres_database
        # Nothing seeded: the county's directory is what the database holds, empty so far.
        assert directory_nodes(endpoints["assignment"]) == 0
        runner = CliRunner(env={k: None for k in os.environ if k.startswith("GRIDLINE_")})
        where = ["--data-dir", str(data_dir)]
        exported = runner.invoke(app, ["directory", "export", str(tmp_path / "empty.csv"), *where])
        assert exported.exit_code == 0, exported.output
        assert "exported 0 nodes" in exported.output

        imported = runner.invoke(app, ["directory", "import", str(EXAMPLE), *where])
        assert imported.exit_code == 0, imported.output
        assert "imported 22 nodes and 9 people into postgresql" in imported.output
        wait_for(
            "assignment follows the import",
            lambda: True if directory_nodes(endpoints["assignment"]) == 22 else None,
        )

        intake = endpoints["intake"]
        posted = httpx.post(f"{intake}/v1/reports", json=report_body(), timeout=10)
        assert posted.status_code == 202, posted.text
        report_id = posted.json()["report_id"]

        def placed() -> dict[str, Any] | None:
            found = httpx.get(f"{intake}/v1/reports/{report_id}", timeout=10)
            status: dict[str, Any] = found.json()
            ready = found.status_code == 200 and status.get("placement") and status.get("tasks")
            return status if ready else None

        status = wait_for("the report is placed", placed)
        assert status["placement"]["node_id"] == HOUSEHOLD
        [task] = status["tasks"]
        escalation = endpoints["escalation"]
        stored = httpx.get(
            f"{escalation}/v1/tasks/{task['task_id']}", timeout=10, headers=bearer(data_dir)
        ).json()
        assert stored["assignee_group_id"] == CADRE_GROUP
        # The documented policy in earnest, not the demo's quickened copy.
        given = datetime.fromisoformat(task["deadline_at"]) - datetime.fromisoformat(
            status["placement"]["placed_at"]
        )
        assert abs((given - FIRST_MEDIUM_DEADLINE).total_seconds()) < 60

        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0, log_path.read_text()[-3000:]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    said = log_path.read_text()
    assert "the demo county" not in said
    assert "gridline directory import FILE" in said
