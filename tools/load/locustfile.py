"""Signed reports to intake at a set rate, as an integrator's feed sends them: the load of the
peak checklist (docs/operations.md, *Scaling for the Spring Festival peak*).

From a checkout with the dev dependencies (`./dev quick` or `uv sync` installs locust):

    GRIDLINE_LOAD_KEY_ID=... GRIDLINE_LOAD_SECRET=... \\
    .venv/bin/locust -f tools/load/locustfile.py --headless --host https://INTAKE \\
        --users 60 --spawn-rate 20 --run-time 15m --rate 300 [--batch 500] [--directory FILE]

`--rate` is the records a second across all users, each user posting at its share of it; a user
has one request in flight, so give at least rate × latency users (latency in seconds), a few
times that for headroom. `--batch N` posts N records a request to `/v1/reports:batch`, as feeds
do; without, single reports to `/v1/reports`. `--directory` takes the addresses from a directory
file (`gridline directory export`), so that assignment places the reports on households as it
will at the peak; without, no address names a household and every report goes to triage.

Every request is signed with the key of a test integrator (scope `health_code_feed`), each with
a fresh nonce: `services/intake/signing.py` is the scheme. Each record is a new person with a
new record id: every one answered 202 is a real report that becomes a task and notices, so run
it against a deployment of production size whose chat groups are not the county's.
"""

from __future__ import annotations

import json
import random
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

# The signing scheme and the record rules come from the code intake itself runs.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gridline_cli.demo import ORIGINS
from services.assignment.directory_file import read as read_directory
from services.assignment.grid import NodeKind
from services.intake.domain import id_check_char
from services.intake.signing import signed_headers

# Locust times `--run-time` on gevent's clock, which has stood still since before this file was
# imported: without this, a run is shorter by the seconds these imports took (all of it, on a
# busy machine).
gevent.get_hub().loop.update_now()

SINGLE_PATH = "/v1/reports"
BATCH_PATH = "/v1/reports:batch"
# Residents' own ID numbers start with a Gansu region code.
HOME_REGION = "620123"
# What no household of any directory is called: without --directory every report is triaged.
UNKNOWN_ADDRESS = "城关镇压测社区{n}号"


def _options(parser: LocustArgumentParser) -> None:
    """Gridline's own options, beside locust's."""
    parser.add_argument("--rate", type=float, default=10.0, help="Records a second, all users.")
    parser.add_argument(
        "--batch", type=int, default=1, help="Records a request; above 1 through :batch."
    )
    parser.add_argument(
        "--key-id", env_var="GRIDLINE_LOAD_KEY_ID", default="", help="Test integrator's key id."
    )
    parser.add_argument(
        "--secret",
        env_var="GRIDLINE_LOAD_SECRET",
        default="",
        is_secret=True,
        help="That key's secret.",
    )
    parser.add_argument(
        "--directory", default="", help="Directory file whose households' addresses to use."
    )


_addresses: list[str] = []


def _check(environment: Environment, **_: Any) -> None:
    """Refuse to start without a key or a sensible plan; load the addresses once."""
    options = environment.parsed_options
    assert options is not None
    problems = []
    if not (options.key_id and options.secret):
        problems.append("--key-id and --secret (a test integrator's key) are needed")
    if options.rate <= 0:
        problems.append("--rate must be above 0")
    if not 1 <= options.batch <= 1000:
        problems.append("--batch must be 1 to 1000 (intake's largest batch)")
    if problems:
        for problem in problems:
            sys.stderr.write(f"gridline load: {problem}\n")
        environment.process_exit_code = 2
        assert environment.runner is not None
        environment.runner.quit()
        return
    if options.directory:
        directory = read_directory(Path(options.directory))
        _addresses[:] = [
            n.address
            for n in directory.nodes.values()
            if n.kind is NodeKind.HOUSEHOLD and n.address
        ]


def _records(count: int) -> Iterator[dict[str, Any]]:
    """New health-code feed records: a new person and record id each."""
    for _ in range(count):
        code, origin, risk = random.choice(ORIGINS)
        birth = datetime(1950, 1, 1) + timedelta(days=random.randrange(365 * 55))
        first17 = f"{HOME_REGION}{birth:%Y%m%d}{random.randrange(1000):03d}"
        arrived = datetime.now(UTC) - timedelta(minutes=random.randrange(24 * 60))
        yield {
            "source": "health_code_feed",
            "source_record_id": f"load-{uuid.uuid4().hex}",
            "name": random.choice("王李张刘陈杨赵马") + random.choice(("伟", "芳", "磊", "丽")),
            "id_number": first17 + id_check_char(first17),
            "phone": f"1{random.choice('3578')}{random.randrange(10**9):09d}",
            "origin_region_code": code,
            "origin_name": origin,
            "origin_risk": risk,
            "arrived_at": arrived.isoformat(),
            "address": random.choice(_addresses)
            if _addresses
            else UNKNOWN_ADDRESS.format(n=random.randrange(1, 10_000)),
        }


class IntakeFeed(FastHttpUser):
    """One integrator connection posting signed records at its share of `--rate`."""

    def on_start(self) -> None:
        """Begin at a random point of the first interval, so that users do not post in step."""
        # Locust patches the standard library for gevent: this sleep lets the other users run.
        time.sleep(random.random() * self._interval())
        self._due = time.monotonic()

    def _interval(self) -> float:
        """Seconds between this user's requests: all users together post `--rate` records."""
        options = self.environment.parsed_options
        runner = self.environment.runner
        assert options is not None and runner is not None
        # The users asked for, not those started so far: the rate builds up while they spawn.
        users = max(1, runner.target_user_count)
        return float(users * options.batch / options.rate)

    def wait_time(self) -> float:
        """Until this user's next request is due; never a burst to catch up after slow answers."""
        now = time.monotonic()
        self._due = max(self._due + self._interval(), now)
        return self._due - now

    @task
    def post(self) -> None:
        """One signed request: a report, or a batch of records."""
        options = self.environment.parsed_options
        assert options is not None
        records = list(_records(options.batch))
        path, body = (
            (SINGLE_PATH, records[0]) if options.batch == 1 else (BATCH_PATH, {"records": records})
        )
        # ASCII JSON: the text sent and the bytes signed are the same.
        data = json.dumps(body)
        headers = {
            "Content-Type": "application/json",
            **signed_headers(
                options.key_id, options.secret, "POST", path, data.encode(), int(time.time()),
                secrets.token_hex(12),
            ),
        }  # fmt: skip
        name = path if options.batch == 1 else f"{path} ({options.batch} records)"
        with self.client.post(
            path, data=data, headers=headers, name=name, catch_response=True
        ) as response:
            if options.batch == 1:
                if response.status_code != 202:
                    response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            counts = response.json().get("counts", {}) if response.status_code == 200 else {}
            if set(counts) - {"accepted"}:
                response.failure(f"{response.status_code}: {counts or response.text[:200]}")


# Locust's listener registration carries no type annotations.
events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_check)  # type: ignore[no-untyped-call]
