"""The signing examples and validate-only, against one intake process on loopback.

Intake requires signatures here, so a 202 means the example's signature held. Each example
posts its own record (a fresh `source_record_id`), so each 202 is a new report, not a replay.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridline.contracts.v1 import events_pb2
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.intake import integrator_admin
from services.intake.integrators import IssuedKey
from services.intake.signing import signed_headers
from tests.intake.conftest import intake_process
from tests.intake.samples import CHECKPOINT_SCAN
from tests.intake.test_routes import reports_on_topic

# One intake for the module: its tests run on one worker.
pytestmark = pytest.mark.xdist_group("integrators")

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "integrators" / "examples"
SCOPES = ["health_code_feed", "checkpoint_scan"]


@dataclass(frozen=True)
class Intake:
    """A running intake and two integrators' keys: a real one and a sandbox one."""

    url: str
    live: IssuedKey
    sandbox: IssuedKey


@pytest.fixture(scope="module")
def intake(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    """Intake requiring signatures; its integrators are created before it starts."""
    data_dir = tmp_path_factory.mktemp("integrators")
    settings = Settings(data_dir=data_dir)
    live = asyncio.run(integrator_admin.create(settings, "兰州健康码平台", SCOPES))
    sandbox = asyncio.run(
        integrator_admin.create(settings, "兰州健康码平台（联调）", SCOPES, sandbox=True)
    )
    with intake_process(
        broker.bootstrap, data_dir, GRIDLINE_INTAKE_REQUIRE_SIGNATURES="true"
    ) as url:
        yield Intake(url, live, sandbox)


def feed_record(record_id: str) -> dict[str, Any]:
    """The guide's example record (a health-code feed's) with this source record id."""
    record = json.loads((EXAMPLES / "report.json").read_text(encoding="utf-8"))
    return {**record, "source_record_id": record_id}


def unique(prefix: str) -> str:
    """A record id no other test (nor an earlier run on the same broker) uses."""
    return f"{prefix}-{secrets.token_hex(6)}"


# --- the examples -------------------------------------------------------------------------


def run_example(command: list[str], intake: Intake, body: Any, tmp_path: Path, *args: str) -> Any:
    """Run an example on a body written to a file; its answer, after checking it exited 0."""
    body_file = tmp_path / "body.json"
    body_file.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    env = {
        **os.environ,
        "GRIDLINE_INTAKE_URL": intake.url,
        "GRIDLINE_KEY_ID": intake.live.key_id,
        "GRIDLINE_KEY_SECRET": intake.live.secret,
    }
    done = subprocess.run(
        [*command, str(body_file), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    *answer, status = done.stdout.strip().splitlines()
    return status, json.loads("\n".join(answer))


def assert_new_report(status: str, answer: Any) -> None:
    assert status == "HTTP 202", answer
    assert answer["status"] == "accepted"
    assert answer["report_id"]
    assert answer["replayed"] is False


def test_the_curl_and_openssl_example_gets_202(intake: Intake, tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl", "openssl") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    command = ["bash", str(EXAMPLES / "sign.sh")]
    assert_new_report(*run_example(command, intake, feed_record(unique("sh")), tmp_path))
    # A query string is signed as part of the path.
    status, answer = run_example(
        command,
        intake,
        {"records": [feed_record(unique("sh"))]},
        tmp_path,
        "/v1/reports:batch?validate_only=true",
    )
    assert (status, answer["counts"]) == ("HTTP 200", {"validated": 1})


def test_the_python_example_gets_202(intake: Intake, tmp_path: Path) -> None:
    # Any Python 3 will do (standard library only); the suite's is at hand.
    command = [sys.executable, str(EXAMPLES / "sign.py")]
    assert_new_report(*run_example(command, intake, feed_record(unique("py")), tmp_path))


def test_the_java_example_gets_202(intake: Intake, tmp_path: Path) -> None:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("no JDK here (javac and java are needed to compile and run Sign.java)")
    classes = tmp_path / "classes"
    subprocess.run([javac, "-d", str(classes), str(EXAMPLES / "Sign.java")], check=True, timeout=60)
    command = [java, "-cp", str(classes), "Sign"]
    assert_new_report(*run_example(command, intake, feed_record(unique("java")), tmp_path))


# --- validate-only ------------------------------------------------------------------------


async def post(
    intake: Intake, key: IssuedKey, path: str, body: Any, nonce: str = "", **headers: str
) -> httpx.Response:
    """Post `body` signed with `key` (with a new nonce unless given one)."""
    raw = json.dumps(body).encode()
    signed = signed_headers(
        key.key_id, key.secret, "POST", path, raw, int(time.time()), nonce or secrets.token_hex(12)
    )
    async with httpx.AsyncClient(base_url=intake.url, timeout=30) as client:
        return await client.post(
            path,
            content=raw,
            headers={**signed, **headers, "Content-Type": "application/json"},
        )


async def on_topic(bootstrap: str, record_prefix: str) -> list[events_pb2.ReportAccepted]:
    """The reports on the topic whose source record id starts with `record_prefix`."""
    return [
        r for r in await reports_on_topic(bootstrap) if r.source_record_id.startswith(record_prefix)
    ]


def as_validated(real: dict[str, Any], accepted_ids: set[str]) -> dict[str, Any]:
    """A real batch result as validate-only answers it (the documented difference).

    Accepted is `validated` without an id; a repeat of a record accepted earlier in the same
    batch is `duplicate` without an id, since that record got none.
    """
    if real["status"] == "accepted":
        return {**real, "status": "validated", "report_id": None}
    if real["status"] == "duplicate" and real["report_id"] in accepted_ids:
        return {**real, "report_id": None}
    return real


async def test_validate_only_answers_as_the_real_batch_and_nothing_reaches_the_topic(
    intake: Intake, broker: EmbeddedBroker
) -> None:
    prefix = unique("vo")
    records = [
        feed_record(f"{prefix}-1"),
        {**feed_record(f"{prefix}-2"), "phone": "12345"},
        # A green scan of a local (from Lanzhou, in the county's province): no report.
        {
            **CHECKPOINT_SCAN,
            "health_code": "green",
            "name": "绿码",
            "origin_region_code": "620102",
            "origin_name": None,
        },
        feed_record(f"{prefix}-3"),
        feed_record(f"{prefix}-1"),
        {"source": "health_code_feed"},
    ]
    batch, dry_run = "/v1/reports:batch", "/v1/reports:batch?validate_only=true"
    validated = await post(intake, intake.live, dry_run, {"records": records})
    real = await post(intake, intake.live, batch, {"records": records})
    assert validated.status_code == real.status_code == 200, real.text
    results = real.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted", "rejected", "cleared", "accepted", "duplicate", "rejected"
    ]  # fmt: skip
    accepted = {r["report_id"] for r in results if r["status"] == "accepted"}
    assert validated.json() == {
        "counts": {"validated": 2, "rejected": 2, "cleared": 1, "duplicate": 1},
        "results": [as_validated(r, accepted) for r in results],
    }
    # Once the records are known, validate-only answers exactly as a real repeat.
    validated_again = await post(intake, intake.live, dry_run, {"records": records})
    real_again = await post(intake, intake.live, batch, {"records": records})
    assert validated_again.json() == real_again.json()
    assert real_again.json()["counts"]["duplicate"] == 3
    # Only the real batch's two reports, once each: the validate-only posts came before and
    # after it, on the same single partition.
    assert sorted(r.report_id for r in await on_topic(broker.bootstrap, prefix)) == sorted(accepted)


async def test_a_validate_only_single_post_answers_as_a_real_one(
    intake: Intake, broker: EmbeddedBroker
) -> None:
    record_id = unique("single")
    record = feed_record(record_id)
    dry_run = "/v1/reports?validate_only=true"
    validated = await post(intake, intake.live, dry_run, record)
    assert validated.status_code == 202
    assert validated.json() == {"report_id": None, "status": "validated", "replayed": False}
    assert "Location" not in validated.headers
    refused = {**record, "id_number": "110105194912310021"}
    validated_refusal = await post(intake, intake.live, dry_run, refused)
    real_refusal = await post(intake, intake.live, "/v1/reports", refused)
    assert validated_refusal.status_code == real_refusal.status_code == 422
    assert validated_refusal.json() == real_refusal.json()
    # The Idempotency-Key is read, never claimed: the real post is the first to hold it.
    real = await post(intake, intake.live, "/v1/reports", record, **{"Idempotency-Key": record_id})
    assert real.status_code == 202
    assert real.json()["replayed"] is False
    repeat = await post(intake, intake.live, dry_run, record, **{"Idempotency-Key": record_id})
    assert repeat.status_code == 202
    assert repeat.json() == {**real.json(), "replayed": True}
    assert repeat.headers["Location"] == real.headers["Location"]
    assert [r.report_id for r in await on_topic(broker.bootstrap, record_id)] == [
        real.json()["report_id"]
    ]


async def test_a_sandbox_integrator_s_posts_are_all_validate_only(
    intake: Intake, broker: EmbeddedBroker
) -> None:
    prefix = unique("sandbox")
    records = [feed_record(f"{prefix}-1"), feed_record(f"{prefix}-2")]
    for _ in range(2):  # nothing is claimed, so a second post answers the same
        answer = await post(intake, intake.sandbox, "/v1/reports:batch", {"records": records})
        assert answer.status_code == 200
        assert answer.json()["counts"] == {"validated": 2}
    nonce = secrets.token_hex(12)
    single = await post(intake, intake.sandbox, "/v1/reports", feed_record(f"{prefix}-3"), nonce)
    assert (single.status_code, single.json()["status"]) == (202, "validated")
    # Its nonces are spent as a real post's are.
    replayed = await post(intake, intake.sandbox, "/v1/reports", feed_record(f"{prefix}-3"), nonce)
    assert replayed.status_code == 401
    assert replayed.json()["rule"] == "signature.nonce_reused"
    # Its scopes still hold: a sandbox answers what its real twin would.
    other = await post(
        intake, intake.sandbox, "/v1/reports", {**feed_record(prefix), "source": "self_report"}
    )
    assert other.status_code == 403
    assert await on_topic(broker.bootstrap, prefix) == []
