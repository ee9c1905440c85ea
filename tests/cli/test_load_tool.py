"""The ops load tool (tools/load/locustfile.py) signs as an integrator and drives a running
intake at the rate it is given."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.intake import integrator_admin
from tests.intake.conftest import intake_process

ROOT = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).parent / "locust"
LOCUSTFILE = ROOT / "tools" / "load" / "locustfile.py"
EXAMPLE = ROOT / "docs" / "examples" / "directory.csv"
RATE = 20.0
# Long enough that a machine busy with the rest of the suite still answers some in time.
SECONDS = 6


def accepted(intake: str) -> float:
    """Reports intake answered 202, from its metrics."""
    total = 0.0
    for line in httpx.get(f"{intake}/metrics").text.splitlines():
        if line.startswith("gridline_intake_reports_total{") and 'outcome="accepted"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def ran_for(log: str) -> float:
    """Seconds between locust setting its run-time limit and reaching it, from its log."""
    moments = {
        event: datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
        for stamp, event in re.findall(
            r"^\[([^\]]+)\] .*(Run time limit set|--run-time limit reached)", log, re.MULTILINE
        )
    }
    return (moments["--run-time limit reached"] - moments["Run time limit set"]).total_seconds()


def locust(intake: str, tmp_path: Path, *options: str, env: dict[str, str]) -> dict[str, Any]:
    """Run the locustfile headless against `intake`; its exit code, stderr (locust's log, for
    the assertion messages: a run with no request in its stats says there what it did) and
    final stats."""
    finished = subprocess.run(
        [str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "--host", intake, "--users", "4",
         "--spawn-rate", "100", "--run-time", f"{SECONDS}s", "--stop-timeout", "10",
         "--json-file", str(tmp_path / "stats"), "--loglevel", "INFO", *options],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=90, cwd=tmp_path,
    )  # fmt: skip
    stats = tmp_path / "stats.json"
    return {
        "code": finished.returncode,
        "stderr": finished.stderr,
        "stats": json.loads(stats.read_text()) if stats.exists() else [],
    }


def test_the_load_tool_posts_signed_reports_at_the_rate_given(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "intake"
    data_dir.mkdir()
    key = asyncio.run(
        integrator_admin.create(Settings(data_dir=data_dir), "load test", ["health_code_feed"])
    )
    # Unsigned posts are refused, as in production: every 202 below was signed.
    with intake_process(
        broker.bootstrap, data_dir, GRIDLINE_INTAKE_REQUIRE_SIGNATURES="true"
    ) as intake:
        before = accepted(intake)
        signed = {"GRIDLINE_LOAD_KEY_ID": key.key_id, "GRIDLINE_LOAD_SECRET": key.secret}
        run = locust(intake, tmp_path, "--rate", str(RATE), env=signed)
        assert run["code"] == 0, run["stderr"]
        # The whole run, however long the locustfile took to import (locust's clock for
        # --run-time starts before that).
        assert ran_for(run["stderr"]) >= 0.9 * SECONDS, run["stderr"]
        singles = [s for s in run["stats"] if s["name"] == "/v1/reports"]
        assert len(singles) == 1, run
        [single] = singles
        assert single["num_failures"] == 0
        posted = single["num_requests"]
        # Never above the rate given (the users' pacing); below it on a busy machine.
        assert 0 < posted <= 1.3 * RATE * SECONDS, posted
        assert accepted(intake) - before == posted

        # Batches, as feeds post them, to the households of docs/directory.md's example.
        batch = locust(
            intake, tmp_path, "--rate", "50", "--batch", "5", "--directory", str(EXAMPLE),
            env=signed,
        )  # fmt: skip
        assert batch["code"] == 0, batch["stderr"]
        batches = [s for s in batch["stats"] if s["name"].endswith("(5 records)")]
        assert len(batches) == 1, batch
        assert batches[0]["num_failures"] == 0 and batches[0]["num_requests"] > 0
