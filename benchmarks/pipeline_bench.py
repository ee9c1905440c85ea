"""The whole pipeline under a surge, and each consumer alone on a backlog, in one run.

1. Surge: the platform (`gridline_cli.platform`, embedded broker, SQLite and Valkey unless
   `--database-url` / `--redis-url` are given) takes `--warm` reports to warm up, then
   `--reports` demo reports offered at `--rate` a second by `paced_load.py` in its own process
   (unsigned posts, allowed in development). Measured: CPU ms per report of every process
   (/proc utime+stime from just before the first post until the pipeline is idle), latency from
   each report's 202 to the first TASK_ASSIGNED notice in its cadre's group in the notify inbox
   (`delivered_at`), how many placeable reports got there and exactly once, and each consumer
   group's records/s while it had a backlog (its /metrics sampled every 0.5 s).
2. Intake alone: the three consumers are paused (SIGSTOP) and the same number of other reports
   is offered at the same rate: CPU ms per report of intake, broker and Redis (and PostgreSQL),
   the baseline the pipeline's sum is compared with.
3. Backlog: for each consumer, a fresh broker (`--partitions` partitions) gets `--backlog`
   records of its topic (reports as intake makes them; the tasks and notices assignment makes of
   them), then 1 and 2 replicas of that service alone are started: records/s from the last
   look at which nothing was processed until all were, and CPU ms per record.

    .venv/bin/python benchmarks/pipeline_bench.py [--reports 3000] [--rate 300]
        [--backlog 20000] [--database-url postgresql://...] [--redis-url redis://...]
        [--json PATH]

Numbers go in docs/benchmarks/pipeline.md. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import os
import platform as machine
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intake_bench import cpu_seconds

from gridline.bus import topics
from gridline.bus.envelope import Envelope
from gridline.bus.producer import EventProducer
from gridline.bus.topics import ensure_topics
from gridline.db import Database
from gridline.embedded import (
    EmbeddedBroker,
    EmbeddedValkey,
    die_with_parent,
    free_port,
    stop_process,
)
from gridline.ids import derived_id, new_id
from gridline.links import PageLinks
from gridline.personal import Sealer
from gridline.settings import Settings
from gridline.timestamps import now
from gridline_cli.demo import DemoReport, build_reports
from gridline_cli.platform import EMBEDDED_BROKER_ENV, Platform, PlatformOptions
from services.assignment import demo_county
from services.assignment.directory import Directory
from services.assignment.placement import place
from services.assignment.risk import DEFAULT_POLICY_FILE, RiskAreas, decide_report, load_policy
from services.intake.domain import report_event
from services.intake.schemas import parse_report

_LOAD = Path(__file__).resolve().parent / "paced_load.py"
CONSUMERS = {
    "assignment": "assignment.reports",
    "escalation": "escalation.tasks",
    "notify": "notify.notifications",
}
BACKLOG_TOPICS = {
    "assignment": topics.REPORTS,
    "escalation": topics.TASKS,
    "notify": topics.NOTIFICATIONS,
}
# What a consumer finished with; "retried" counts extra tries, not records.
_FINISHED = ("processed", "duplicate", "skipped", "dead_lettered")
_TASK_ASSIGNED = "NOTIFICATION_KIND_TASK_ASSIGNED"
_LOOK_SECONDS = 0.5
# A 20,000-record drain with two replicas lasts one to a few seconds.
_BACKLOG_LOOK_SECONDS = 0.1
_QUIET_LOOKS = 3
_PUBLISH_CHUNK = 1000
_METRIC = re.compile(
    r"^(gridline_consumer_records_total|gridline_consumer_lag_records"
    r"|gridline_outbox_pending_records|gridline_outbox_published_total)(?:\{(.*)\})? (\S+)$",
    re.MULTILINE,
)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
# Rate limits would measure themselves: one unsigned client sends everything.
_QUIET_ENV = {
    "GRIDLINE_LOG_LEVEL": "WARNING",
    "GRIDLINE_INTAKE_RATE_PER_SECOND": "1000000",
    "GRIDLINE_INTAKE_RATE_BURST": "1000000",
}


def say(line: str) -> None:
    """Progress on stderr, so that stdout is the report alone."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")
    sys.stderr.flush()


# --- CPU of processes ------------------------------------------------------------------------


class Backends:
    """CPU of the PostgreSQL server processes serving one database.

    A backend is known by its process title (`postgres: ... <user> <database> <client> ...`)
    and remembered with the CPU it had when last looked at, so that one closed between two
    looks loses only what it used since the last one.
    """

    def __init__(self, database: str) -> None:
        self._tag = f" {database} ".encode()
        self._seen: dict[int, float] = {}

    def total(self) -> float:
        """CPU seconds used so far by every backend of the database seen so far."""
        for pid in _pids():
            title = _read(f"/proc/{pid}/cmdline")
            if title.startswith(b"postgres:") and self._tag in title:
                self._seen[pid] = max(self._seen.get(pid, 0.0), cpu_seconds([pid]))
        return sum(self._seen.values())


def machine_busy_seconds() -> float:
    """CPU seconds the machine's cores have spent busy since boot, all processes together.

    Busy is everything but idle and I/O wait; time the hypervisor gave to others (steal) counts
    as busy, since it was not there to be had.
    """
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def redis_server_pid(url: str) -> int | None:
    """The local redis-server listening on the URL's port, if it runs on this machine."""
    port = f":{make_url(url).port or 6379}".encode()
    for pid in _pids():
        if _read(f"/proc/{pid}/comm").strip() == b"redis-server" and port in _read(
            f"/proc/{pid}/cmdline"
        ):
            return pid
    return None


@dataclass
class Processes:
    """The processes whose CPU a phase counts, by name, and the database's backends."""

    trees: dict[str, list[int]]
    backends: Backends | None = None

    def cpu(self) -> dict[str, float]:
        """CPU seconds each has used so far."""
        used = {name: cpu_seconds(pids) for name, pids in self.trees.items()}
        if self.backends is not None:
            used["postgres"] = self.backends.total()
        return used

    def only(self, *names: str) -> Processes:
        """The same, restricted to some names (the backends stay)."""
        return Processes({n: p for n, p in self.trees.items() if n in names}, self.backends)


def per_item_ms(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """CPU ms per item of each process between two readings, and their sum."""
    used = {name: 1000 * (after[name] - before[name]) / max(items, 1) for name in after}
    return {**used, "sum": sum(used.values())}


# --- metrics ---------------------------------------------------------------------------------


def scrape(client: httpx.Client, url: str) -> dict[str, dict[str, float]]:
    """Each consumer group's records by outcome and its lag ("lag"); under "" the outbox's
    records waiting ("outbox") and published ("published")."""
    groups: dict[str, dict[str, float]] = {}
    for name, labels, value in _METRIC.findall(client.get(f"{url}/metrics").text):
        found = dict(_LABEL.findall(labels))
        if name == "gridline_consumer_records_total":
            key = found["outcome"]
        elif name == "gridline_consumer_lag_records":
            key = "lag"
        elif name == "gridline_outbox_published_total":
            key = "published"
        else:
            key = "outbox"
        counts = groups.setdefault(found.get("group", ""), {})
        counts[key] = counts.get(key, 0.0) + float(value)
    return groups


def _finished(counts: dict[str, float]) -> float:
    """Records done with, of a group's counts by outcome."""
    return sum(counts.get(outcome, 0.0) for outcome in _FINISHED)


@dataclass
class Look:
    """One look at the consumers: when, each replica's answer (when it came, its counts by
    group), CPU seconds so far and the machine's busy seconds so far."""

    at: float
    replicas: list[tuple[float, dict[str, dict[str, float]]]]
    cpu: dict[str, float]
    machine: float

    @cached_property
    def groups(self) -> dict[str, dict[str, float]]:
        """The replicas' counts by group summed, and under "behind" how many replicas have
        records of the group still to take (so hold partitions of it)."""
        merged: dict[str, dict[str, float]] = {}
        for _, answer in self.replicas:
            for group, counts in answer.items():
                into = merged.setdefault(group, {})
                for key, value in counts.items():
                    into[key] = into.get(key, 0.0) + value
                into["behind"] = into.get("behind", 0.0) + bool(counts.get("lag"))
        return merged

    def finished(self, group: str) -> float:
        """Records the group is done with."""
        return _finished(self.groups.get(group, {}))

    def idle(self) -> bool:
        """No consumer behind and no outbox waiting."""
        return not any(c.get("lag", 0.0) or c.get("outbox", 0.0) for c in self.groups.values())


@dataclass
class Watcher:
    """Looks at services' /metrics (summed over replicas) and at the processes' CPU."""

    urls: list[str]
    processes: Processes
    looks: list[Look] = field(default_factory=list)
    _last: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    _answered: dict[str, float] = field(default_factory=dict)
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=2.0))

    def look(self) -> Look:
        """Take one look; a service that does not answer yet counts with its last answer."""
        replicas: list[tuple[float, dict[str, dict[str, float]]]] = []
        for url in self.urls:
            with suppress(httpx.HTTPError):
                self._last[url] = scrape(self._client, url)
                self._answered[url] = time.monotonic()
            replicas.append((self._answered.get(url, 0.0), self._last.get(url, {})))
        look = Look(time.monotonic(), replicas, self.processes.cpu(), machine_busy_seconds())
        self.looks.append(look)
        return look

    def quiet(self) -> bool:
        """The last few looks saw nothing behind and no count moving."""
        recent = self.looks[-_QUIET_LOOKS:]
        return (
            len(recent) == _QUIET_LOOKS
            and all(look.idle() for look in recent)
            and all(look.groups == recent[0].groups for look in recent)
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


# --- infrastructure --------------------------------------------------------------------------


async def _on_server(url: str, statement: str) -> None:
    server = await asyncpg.connect(url)
    try:
        await server.execute(statement)
    finally:
        await server.close()


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new database on the PostgreSQL server of `url`, dropped afterwards ("" stays "")."""
    if not url:
        yield ""
        return
    server = make_url(url).set(drivername="postgresql")
    admin = server.render_as_string(hide_password=False)
    name = f"gridline_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_on_server(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_on_server(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def redis_trees(redis_url: str, valkey_pid: int | None) -> dict[str, list[int]]:
    """The Redis server process to meter: the embedded Valkey, else a local server's."""
    if valkey_pid is not None:
        return {"valkey": [valkey_pid]}
    pid = redis_server_pid(redis_url) if redis_url else None
    return {"redis": [pid]} if pid else {}


def backends_of(database_url: str) -> Backends | None:
    """The backends of a PostgreSQL database URL, None for SQLite."""
    return Backends(str(make_url(database_url).database)) if database_url else None


# --- posting ---------------------------------------------------------------------------------


@dataclass
class Posted:
    """What the load generator did: seconds, its CPU, how many went late, and each request's
    status, when it was sent, when it was answered and the answer."""

    seconds: float
    cpu_seconds: float
    late: int
    answers: list[tuple[int, float, float, str]]

    def report_ids(self) -> list[str]:
        """The report id of each request ("" when it was not answered 202)."""
        return [json.loads(a[3])["report_id"] if a[0] == 202 else "" for a in self.answers]

    def statuses(self) -> dict[int, int]:
        """Requests by status."""
        return dict(Counter(answer[0] for answer in self.answers))

    def answer_seconds(self) -> dict[str, float]:
        """Percentiles of the time to an answer."""
        ordered = sorted(answered - sent for _, sent, answered, _ in self.answers)
        return {f"p{q}_s": _percentile(ordered, q / 100) for q in (50, 99)} | {"max_s": ordered[-1]}


def post(
    url: str,
    reports: list[DemoReport],
    options: argparse.Namespace,
    work: Path,
    meanwhile: Callable[[], object] = lambda: None,
) -> Posted:
    """Offer the reports to intake at the rate from `paced_load.py`; `meanwhile` every look."""
    plan, result = work / "plan.json", work / "result.json"
    bodies = [json.dumps(r.body, ensure_ascii=False) for r in reports]
    plan.write_text(
        json.dumps(
            {
                "url": url,
                "path": "/v1/reports",
                "rate": options.rate,
                "connections": options.connections,
                "bodies": bodies,
            }
        )
    )
    process = subprocess.Popen([sys.executable, str(_LOAD), str(plan), str(result)])
    deadline = time.monotonic() + 60 + 3 * len(reports) / options.rate
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the load generator did not finish")
            meanwhile()
            time.sleep(_LOOK_SECONDS)
    finally:
        stop_process(process)
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed with {process.returncode}")
    found = json.loads(result.read_text())
    answers = [
        (int(s), float(sent), float(at), str(body)) for s, sent, at, body in found["answers"]
    ]
    return Posted(found["seconds"], found["cpu_seconds"], found["late"], answers)


# --- the inbox -------------------------------------------------------------------------------


@dataclass
class Inbox:
    """The notify inbox read as it grows: task notices by report, and every notice's id."""

    path: Path
    assigned: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    ids: Counter[str] = field(default_factory=Counter)
    _offset: int = 0

    def read(self) -> None:
        """Take in the lines written since the last read (a line being written waits)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as inbox:
            inbox.seek(self._offset)
            chunk = inbox.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for raw in complete.splitlines():
            line = json.loads(raw)
            self.ids[line["notification_id"]] += 1
            if line["kind"] == _TASK_ASSIGNED:
                delivered = datetime.fromisoformat(line["delivered_at"]).timestamp()
                self.assigned.setdefault(line["report_id"], []).append(
                    (line["group_id"], delivered)
                )

    def to_group(self, report_id: str, group: str) -> list[float]:
        """When each task notice of the report reached that group."""
        return [at for g, at in self.assigned.get(report_id, []) if g == group]


def expected_groups(reports: list[DemoReport], posted: Posted) -> dict[str, tuple[str, float]]:
    """Each accepted placeable report: its cadre's group and when intake answered 202."""
    return {
        report_id: (report.expected_group, answered)
        for report, report_id, (_, _, answered, _) in zip(
            reports, posted.report_ids(), posted.answers, strict=True
        )
        if report_id and report.expected_group
    }


def wait_for_pipeline(
    inbox: Inbox, expected: dict[str, tuple[str, float]], watcher: Watcher, bound: float
) -> bool:
    """Until every expected report reached its group and the consumers are idle; whether it did
    within `bound` seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        inbox.read()
        watcher.look()
        arrived = all(inbox.to_group(rid, group) for rid, (group, _) in expected.items())
        if arrived and watcher.quiet():
            return True
        time.sleep(_LOOK_SECONDS)
    return False


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def deliveries(inbox: Inbox, expected: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """How many placeable reports reached their cadre's group, how often, and how fast."""
    latencies, once, wrong = [], 0, 0
    for report_id, (group, answered) in expected.items():
        arrivals = inbox.to_group(report_id, group)
        if arrivals:
            latencies.append(min(arrivals) - answered)
        once += len(arrivals) == 1
        wrong += bool(inbox.assigned.get(report_id)) and not arrivals
    ordered = sorted(latencies)
    return {
        "placeable": len(expected),
        "delivered": len(latencies),
        "exactly_once": once,
        "wrong_group_only": wrong,
        "duplicate_inbox_lines": sum(n - 1 for n in inbox.ids.values()),
        **{f"p{q}_s": _percentile(ordered, q / 100) for q in (50, 95, 99)},
        "max_s": ordered[-1] if ordered else float("nan"),
    }


def drain_rates(looks: list[Look]) -> dict[str, dict[str, float]]:
    """Each consumer group's records, records/s while busy, records/s while it had a backlog
    (lag above zero at the start of a look's interval) and its largest lag."""
    numbers = {}
    for service, group in CONSUMERS.items():
        counts = [look.finished(group) for look in looks]
        moved = [i for i in range(1, len(looks)) if counts[i] > counts[i - 1]]
        backlogged = [
            i for i in range(1, len(looks)) if looks[i - 1].groups.get(group, {}).get("lag", 0) > 0
        ]
        backlog_seconds = sum(looks[i].at - looks[i - 1].at for i in backlogged)
        busy = looks[moved[-1]].at - looks[moved[0] - 1].at if moved else 0.0
        numbers[service] = {
            "records": counts[-1] - counts[0],
            "busy_per_second": (counts[-1] - counts[0]) / busy if busy else 0.0,
            "backlog_per_second": sum(counts[i] - counts[i - 1] for i in backlogged)
            / backlog_seconds
            if backlog_seconds
            else 0.0,
            "backlog_seconds": backlog_seconds,
            "max_lag": max(look.groups.get(group, {}).get("lag", 0.0) for look in looks),
        }
    return numbers


# --- 1 and 2: the surge and intake alone -----------------------------------------------------


def surge(options: argparse.Namespace, database_url: str, work: Path) -> dict[str, Any]:
    """The platform under the surge, then intake alone at the same rate; the numbers."""
    seed = int(time.time()) % 1_000_000  # new people and record ids on a Redis kept between runs
    reports = build_reports(options.warm + 2 * options.reports, seed)
    warm = reports[: options.warm]
    measured = reports[options.warm : options.warm + options.reports]
    alone = reports[options.warm + options.reports :]
    running = Platform(
        PlatformOptions(
            data_dir=work / "platform",
            database_url=database_url,
            redis_url=options.redis_url,
            ack_deadline_seconds=3600,
            extra_env=_QUIET_ENV,
        )
    )
    try:
        say("starting the platform")
        endpoints = running.start()
        assert running.broker is not None and running.broker.process is not None
        intake = endpoints.service_url("intake")
        valkey_pid = running.valkey.pid if running.valkey is not None else None
        processes = Processes(
            {name: [p.pid] for name, p in running.processes.items()}
            | {"broker": [running.broker.process.pid]}
            | redis_trees(options.redis_url, valkey_pid),
            backends_of(database_url),
        )
        watcher = Watcher([endpoints.service_url(s) for s in CONSUMERS], processes)
        inbox = Inbox(Path(endpoints.inbox))
        say(f"warming up with {len(warm)} reports")
        warm_posted = post(intake, warm, options, work)
        if not wait_for_pipeline(inbox, expected_groups(warm, warm_posted), watcher, 120):
            raise TimeoutError("the warm-up reports did not get through in 120 s")
        say(f"idle for {options.idle:.0f} s")
        quiet_from = watcher.look()
        while time.monotonic() - quiet_from.at < options.idle:
            time.sleep(_LOOK_SECONDS)
            watcher.look()

        say(f"surge: {len(measured)} reports at {options.rate}/s")
        first = watcher.look()
        begin = len(watcher.looks) - 1
        posted = post(intake, measured, options, work, watcher.look)
        expected = expected_groups(measured, posted)
        drained = wait_for_pipeline(inbox, expected, watcher, options.wait)
        last = watcher.looks[-1]
        accepted = sum(1 for rid in posted.report_ids() if rid)
        result: dict[str, Any] = {
            "offered": len(measured),
            "statuses": posted.statuses(),
            "offered_per_second": len(measured) / posted.seconds,
            "late": posted.late,
            "answer_seconds": posted.answer_seconds(),
            "load_cpu_ms": 1000 * posted.cpu_seconds / len(measured),
            "drained": drained,
            "seconds_to_idle": last.at - first.at,
            "cpu_ms": per_item_ms(first.cpu, last.cpu, accepted),
            # What each process uses a second with nothing to do, looked at as often.
            "idle_cpu_ms_a_second": {
                name: ms / (first.at - quiet_from.at)
                for name, ms in per_item_ms(quiet_from.cpu, first.cpu, 1).items()
            },
            "latency": deliveries(inbox, expected),
            "consumers": drain_rates(watcher.looks[begin:]),
        }
        watcher.close()

        say(f"intake alone: {len(alone)} reports at {options.rate}/s, consumers paused")
        entry = processes.only("intake", "broker", "valkey", "redis")
        for name in CONSUMERS:
            running.processes[name].send_signal(signal.SIGSTOP)
        try:
            before = entry.cpu()
            posted = post(intake, alone, options, work)
            after = entry.cpu()
        finally:
            for name in CONSUMERS:
                running.processes[name].send_signal(signal.SIGCONT)
        result["intake_alone"] = {
            "statuses": posted.statuses(),
            "offered_per_second": len(alone) / posted.seconds,
            "answer_seconds": posted.answer_seconds(),
            "cpu_ms": per_item_ms(before, after, sum(1 for rid in posted.report_ids() if rid)),
        }
    finally:
        running.stop(drain_seconds=0)
    result["unclean_exits"] = running.unclean_exits()
    return result


# --- 3: each consumer alone on a backlog -----------------------------------------------------


def backlog_events(count: int) -> dict[str, list[Envelope]]:
    """`count` events for each consumer: reports as intake makes them of demo reports, and the
    task events and notices assignment makes of those (as its handler keys and names them)."""
    settings = Settings()
    sealer = Sealer(settings.pii_key.get_secret_value())
    secret = settings.person_key_secret.get_secret_value()
    county = demo_county.generate()
    directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
    links = PageLinks.from_settings(settings)
    policy, areas = load_policy(DEFAULT_POLICY_FILE), RiskAreas()
    events: dict[str, list[Envelope]] = {name: [] for name in CONSUMERS}
    for demo in build_reports(count, seed=int(time.time()) % 1_000_000 + 1):
        moment = now()
        fields = parse_report(demo.body).event_fields(settings.intake_county_region_code)
        report = report_event(
            report_id=new_id(),
            accepted_at=moment,
            person_key_secret=secret,
            sealer=sealer,
            **fields,
        )
        decision = decide_report(policy, areas, report, moment)
        placed = place(report, directory, now=moment, links=links, decision=decision)
        task = placed.task
        events["assignment"].append(Envelope(report.report_id, report.person_key, report))
        events["escalation"].append(
            Envelope(
                derived_id("task-event", task.task_id, "assigned"),
                task.household_id or task.grid_id,
                task,
            )
        )
        events["notify"] += [
            Envelope(n.notification_id, n.recipient.group_id, n) for n in placed.notifications
        ]
    events["notify"] = events["notify"][:count]
    return events


async def _publish(bootstrap: str, topic: str, events: list[Envelope]) -> None:
    settings = Settings(kafka_bootstrap=bootstrap, kafka_idempotence=False)
    async with EventProducer(settings) as producer:
        for start in range(0, len(events), _PUBLISH_CHUNK):
            confirmed = await producer.publish_many(topic, events[start : start + _PUBLISH_CHUNK])
            if not all(confirmed):
                raise RuntimeError(f"the broker did not confirm the backlog on {topic}")


async def _prepare_database(service: str, settings: Settings) -> None:
    """The service's schema and tables, made before its replicas start (two replicas making
    them at once on a fresh PostgreSQL database collide); for assignment the demo county too,
    so that no replica seeds it at its start."""
    storage = importlib.import_module(f"services.{service}.storage")
    # As the service opens it (with its migrations once it has them), so that it finds its own.
    async with Database(settings, service, storage.TABLES, storage.MIGRATIONS) as db:
        if service != "assignment":
            return
        county = demo_county.generate()
        directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
        async with db.session() as session:
            await storage.replace_directory(session, directory)


def replica_env(service: str, base: dict[str, str]) -> tuple[dict[str, str], str]:
    """One replica's environment (its own ports) and its HTTP URL."""
    port = free_port()
    env = {
        **base,
        f"GRIDLINE_{service.upper()}_HTTP_PORT": str(port),
        "GRIDLINE_DIRECTORY_GRPC_PORT": str(free_port()),
        "GRIDLINE_TASKS_GRPC_PORT": str(free_port()),
        "GRIDLINE_NOTIFY_GRPC_PORT": str(free_port()),
    }
    return env, f"http://127.0.0.1:{port}"


def drain_backlog(
    service: str,
    replicas: int,
    events: list[Envelope],
    options: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    """Start `replicas` processes of one service on a broker holding the backlog; the numbers."""
    work.mkdir(parents=True)
    broker = EmbeddedBroker(log_path=work / "broker.log")
    valkey: EmbeddedValkey | None = None
    started: list[subprocess.Popen[bytes]] = []
    with fresh_database(options.database_url) as database_url:
        try:
            broker.start()
            asyncio.run(ensure_topics(broker.bootstrap, options.partitions, 1))
            asyncio.run(_publish(broker.bootstrap, BACKLOG_TOPICS[service], events))
            redis_url = options.redis_url
            if service == "notify" and not redis_url:
                valkey = EmbeddedValkey()
                valkey.start()
                redis_url = valkey.url
            settings = Settings(data_dir=work, database_url=database_url)
            asyncio.run(_prepare_database(service, settings))
            base = {
                **os.environ,
                **EMBEDDED_BROKER_ENV,
                **_QUIET_ENV,
                "GRIDLINE_BROKER_EPOCH": uuid.uuid4().hex,
                "GRIDLINE_DATA_DIR": str(work),
                "GRIDLINE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "GRIDLINE_DATABASE_URL": database_url,
                "GRIDLINE_REDIS_URL": redis_url,
                "GRIDLINE_HOST": "127.0.0.1",
                # Nobody serves these here: escalation's consumer needs neither.
                "GRIDLINE_DIRECTORY_TARGET": f"127.0.0.1:{free_port()}",
                "GRIDLINE_TASKS_TARGET": f"127.0.0.1:{free_port()}",
                "GRIDLINE_SEED_DEMO_COUNTY": "true",
                "GRIDLINE_ACK_DEADLINE_SECONDS": "3600",
                # Nothing falls due within the run: the watchers look once, at the start.
                "GRIDLINE_ESCALATION_TICK_SECONDS": "3600",
            }
            urls = []
            for n in range(replicas):
                env, url = replica_env(service, base)
                with (work / f"{service}{n}.log").open("ab") as log:
                    started.append(
                        subprocess.Popen(
                            [sys.executable, "-m", f"services.{service}"],
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=die_with_parent,
                        )
                    )
                urls.append(url)
            spawned = time.monotonic()
            assert broker.process is not None
            processes = Processes(
                {service: [p.pid for p in started], "broker": [broker.process.pid]}
                | redis_trees(redis_url, valkey.pid if valkey else None),
                backends_of(database_url),
            )
            watcher = Watcher(urls, processes)
            group = CONSUMERS[service]
            # Until all are done and what they produced is published (its CPU counts too).
            while True:
                look = watcher.look()
                if look.finished(group) >= len(events) and look.idle():
                    break
                if time.monotonic() - spawned > options.backlog_timeout:
                    break
                if any(p.poll() is not None for p in started):
                    raise RuntimeError(f"{service} exited; see {work}")
                time.sleep(_BACKLOG_LOOK_SECONDS)
            watcher.close()
            return backlog_numbers(watcher.looks, group, len(events), spawned, replicas)
        finally:
            for process in started:
                stop_process(process)
            if valkey is not None:
                valkey.stop()
            broker.stop()


def together_rate(looks: list[Look], group: str) -> float:
    """Records/s of the replicas together over these looks: each replica's least-squares slope
    of its own finished count against the moments it answered, summed.

    A replica answers a scrape between its batches, up to a batch's time after it is asked, and
    its count moves a whole batch at a time: two looks' difference over a window of a second or
    less is off by tens of percent, a fit through every look of the window is not. A look at
    which a replica did not answer repeats its last answer, counted once. NaN when a replica
    answered fewer than three times in the window.
    """
    total = 0.0
    for replica in range(len(looks[0].replicas)):
        points = sorted(
            {
                (look.replicas[replica][0], _finished(look.replicas[replica][1].get(group, {})))
                for look in looks
            }
        )
        if len(points) < 3:  # one answer per moment: the set left only distinct ones
            return float("nan")
        moments, counts = zip(*points, strict=True)
        total += statistics.linear_regression(moments, counts).slope
    return total


def backlog_numbers(
    looks: list[Look], group: str, total: int, spawned: float, replicas: int
) -> dict[str, Any]:
    """Records/s from the last look with nothing done to the first with everything done,
    between the looks past 20 % and past 80 %, and while every replica held partitions with
    records still to take (`together_rate`), with the share of the machine's cores busy then;
    CPU ms per record from that first look until the last (everything done and the outbox
    published)."""
    counts = [look.finished(group) for look in looks]
    # Every replica at work: past the joins and rebalances of the start, before the first
    # replica runs out of records at the end.
    together = [
        i
        for i, look in enumerate(looks)
        if look.groups.get(group, {}).get("behind", 0.0) >= replicas
    ]
    begun = max((i for i, c in enumerate(counts) if c == 0), default=0)
    done = next((i for i, c in enumerate(counts) if c >= total), None)
    outcomes = {
        k: v for k, v in looks[-1].groups.get(group, {}).items() if k not in ("lag", "behind")
    }
    outcomes["published"] = looks[-1].groups.get("", {}).get("published", 0.0)
    if done is None:
        return {"complete": False, "records": counts[-1], "outcomes": outcomes}
    low = next(i for i, c in enumerate(counts) if c >= 0.2 * total)
    high = next(i for i, c in enumerate(counts) if c >= 0.8 * total)
    seconds = looks[done].at - looks[begun].at
    return {
        "complete": True,
        "records": counts[done],
        "per_second": (counts[done] - counts[begun]) / seconds,
        "middle_per_second": (counts[high] - counts[low]) / (looks[high].at - looks[low].at)
        if high > low
        else float("nan"),
        "seconds": seconds,
        "together_per_second": together_rate(looks[together[0] : together[-1] + 1], group)
        if together
        else float("nan"),
        "together_seconds": looks[together[-1]].at - looks[together[0]].at if together else 0.0,
        "together_busy": _busy(looks[together[0]], looks[together[-1]]) if together else math.nan,
        "startup_seconds": looks[begun].at - spawned,
        "published_seconds": looks[-1].at - looks[begun].at,
        "cpu_ms": per_item_ms(looks[begun].cpu, looks[-1].cpu, total),
        "outcomes": outcomes,
    }


def _busy(first: Look, last: Look) -> float:
    """The share of the machine's cores busy between two looks (NaN when they are one)."""
    seconds = last.at - first.at
    if seconds <= 0:
        return math.nan
    return (last.machine - first.machine) / seconds / (os.cpu_count() or 1)


# --- report ----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _answers(phase: dict[str, Any]) -> str:
    times = phase["answer_seconds"]
    return f"p50 {times['p50_s'] * 1000:.0f} / p99 {times['p99_s'] * 1000:.0f} ms"


def markdown(numbers: dict[str, Any]) -> str:
    """Every number as Markdown tables."""
    lines = [
        f"## Pipeline benchmark: {numbers['stores']}",
        "",
        f"{numbers['date']}; {numbers['machine']}; load average before: {numbers['load'][0]:.2f},"
        f" after: {numbers['load'][1]:.2f}",
    ]
    if "surge" in numbers:
        lines += _surge_lines(numbers)
    return "\n".join(lines + _backlog_lines(numbers)) + "\n"


def _surge_lines(numbers: dict[str, Any]) -> list[str]:
    s, alone = numbers["surge"], numbers["surge"]["intake_alone"]
    lines = [
        "",
        f"### Surge: {s['offered']} reports offered at {numbers['options']['rate']}/s "
        f"(achieved {s['offered_per_second']:.0f}/s, {s['late']} sent late; answers "
        f"{s['statuses']}), idle {s['seconds_to_idle']:.1f} s after the first post"
        + ("" if s["drained"] else " — NOT DRAINED within the bound"),
        "",
        f"time to intake's answer: {_answers(s)} in the surge, {_answers(alone)} alone",
        "",
        "| process | CPU ms a report, whole pipeline | CPU ms a report, intake alone | "
        "idle, CPU ms a second |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, value in s["cpu_ms"].items():
        label = f"**{name}**" if name == "sum" else name
        lines.append(
            f"| {label} | {_ms(value)} | {_ms(alone['cpu_ms'].get(name))} | "
            f"{_ms(s['idle_cpu_ms_a_second'][name])} |"
        )
    ratio = s["cpu_ms"]["sum"] / alone["cpu_ms"]["sum"] if alone["cpu_ms"]["sum"] else 0.0
    idle = s["idle_cpu_ms_a_second"]["sum"] * s["seconds_to_idle"] / s["offered"]
    lat = s["latency"]
    lines += [
        "",
        f"of the sum, {idle:.2f} ms a report is what the processes use idle over as long; "
        f"pipeline / intake alone: {ratio:.2f}×; intake alone offered "
        f"{alone['offered_per_second']:.0f}/s, answers {alone['statuses']}; load generator "
        f"{s['load_cpu_ms']:.2f} CPU ms a report (not in the sums)",
        "",
        "| placeable accepted | reached cadre group | exactly once | other group only | "
        "duplicate inbox lines | p50 s | p95 s | p99 s | max s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {lat['placeable']} | {lat['delivered']} | {lat['exactly_once']} | "
        f"{lat['wrong_group_only']} | {lat['duplicate_inbox_lines']} | {lat['p50_s']:.3f} | "
        f"{lat['p95_s']:.3f} | {lat['p99_s']:.3f} | {lat['max_s']:.3f} |",
        "",
        "| consumer group (surge) | records | records/s while busy | records/s with a backlog "
        "(s) | largest lag |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for service, c in s["consumers"].items():
        lines.append(
            f"| {CONSUMERS[service]} | {c['records']:.0f} | {c['busy_per_second']:.0f} | "
            f"{c['backlog_per_second']:.0f} ({c['backlog_seconds']:.1f}) | {c['max_lag']:.0f} |"
        )
    if s["unclean_exits"]:
        lines += ["", f"unclean exits at stop: {s['unclean_exits']}"]
    return lines


def _backlog_lines(numbers: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"### Backlog: {numbers['options']['backlog']} records, each consumer alone, "
        f"{numbers['options']['partitions']} partitions",
        "",
        "| consumer | replicas | run | records/s | records/s 20–80 % | records/s all at work (s, "
        "machine busy) | "
        "CPU ms a record: service, broker, redis, postgres, sum | s to first record | s: done, "
        "published | outcomes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for row in numbers["backlog"]:
        b = row["numbers"]
        head = f"| {row['service']} | {row['replicas']} | {row.get('run', 1)} |"
        outcomes = ", ".join(f"{k} {v:.0f}" for k, v in b["outcomes"].items())
        if not b["complete"]:
            why = b.get("error") or f"{b['records']:.0f} done in the bound"
            lines.append(f"{head} NOT DONE: {why} | | | | | | {outcomes} |")
            continue
        cpu = b["cpu_ms"]
        redis = cpu.get("valkey", cpu.get("redis"))
        split = " / ".join(
            _ms(v) for v in (cpu[row["service"]], cpu["broker"], redis, cpu.get("postgres"))
        )
        lines.append(
            f"{head} {b['per_second']:.0f} | {b['middle_per_second']:.0f} | "
            f"{b['together_per_second']:.0f} ({b['together_seconds']:.1f}, "
            f"{b['together_busy']:.0%}) | {split} / "
            f"**{cpu['sum']:.2f}** | {b['startup_seconds']:.1f} | {b['seconds']:.1f}, "
            f"{b['published_seconds']:.1f} | {outcomes} |"
        )
    return lines + _ratio_lines(numbers["backlog"])


_RATES = {
    "per_second": "whole drain",
    "middle_per_second": "20–80 %",
    "together_per_second": "all at work",
}


def _ratio_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Two replicas over one, each rate's median over the runs (runs that did not finish, or
    too short to give that rate, left out)."""
    rates = ", ".join(_RATES.values())
    lines = ["", f"| consumer | two replicas ÷ one, median of the runs: {rates} | runs |"]
    lines.append("| --- | --- | ---: |")
    for service in dict.fromkeys(row["service"] for row in rows):
        done = [r for r in rows if r["service"] == service and r["numbers"]["complete"]]
        ratios = []
        for key in _RATES:
            one, two = ([r["numbers"][key] for r in done if r["replicas"] == n] for n in (1, 2))
            one, two = ([v for v in values if not math.isnan(v)] for values in (one, two))
            ratios.append(statistics.median(two) / statistics.median(one) if one and two else None)
        shown = ", ".join("–" if r is None else f"{r:.2f}×" for r in ratios)
        lines.append(f"| {service} | {shown} | {len(done) // 2} |")
    return lines


class OutOfTime(Exception):
    """The whole run took longer than --timeout."""


def _alarm(*_: object) -> None:
    raise OutOfTime("the benchmark ran past --timeout")


def main() -> None:
    """Run the surge, intake alone and the backlogs; print Markdown, write JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=3000, help="reports in the surge (0: none)")
    parser.add_argument("--rate", type=float, default=300.0, help="reports offered a second")
    parser.add_argument("--warm", type=int, default=100, help="warm-up reports before")
    parser.add_argument("--connections", type=int, default=128, help="most posts in flight")
    parser.add_argument("--wait", type=float, default=180.0, help="bound on the drain, s")
    parser.add_argument("--backlog", type=int, default=20000, help="records for each consumer")
    parser.add_argument("--partitions", type=int, default=4, help="of each backlog topic")
    parser.add_argument("--backlog-timeout", type=float, default=300.0, help="bound, s")
    parser.add_argument(
        "--repeat", type=int, default=1, help="drains of each backlog with 1 and 2 replicas"
    )
    parser.add_argument(
        "--services", default=",".join(CONSUMERS), help="backlogs to drain ('': none)"
    )
    parser.add_argument("--database-url", default="", help="PostgreSQL server (fresh database)")
    parser.add_argument("--redis-url", default="", help="Redis instead of embedded Valkey")
    parser.add_argument("--idle", type=float, default=5.0, help="idle look before the surge, s")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--timeout", type=int, default=3000, help="bound on the whole run, s")
    options = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(options.timeout)
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    say(f"work directory (logs): {work}")
    numbers: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{machine.platform()}, {os.cpu_count()} CPUs, "
        f"Python {machine.python_version()}",
        "stores": "PostgreSQL + Redis"
        if options.database_url
        else "SQLite files + embedded Valkey",
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
        "load": [os.getloadavg()[0]],
    }
    if options.reports:
        with fresh_database(options.database_url) as database_url:
            numbers["surge"] = surge(options, database_url, work / "surge")
    services = [name for name in options.services.split(",") if name]
    numbers["backlog"] = []
    if services:
        say(f"preparing {options.backlog} records for each backlog")
        events = backlog_events(options.backlog)
    for service in services:
        # One replica, then two, again and again: the runs of each kind spread alike over
        # whatever else the machine does meanwhile.
        for run in range(1, options.repeat + 1):
            for replicas in (1, 2):
                say(f"backlog: {service}, {replicas} replica(s), run {run}")
                try:
                    found = drain_backlog(
                        service,
                        replicas,
                        events[service],
                        options,
                        work / f"{service}-{replicas}-{run}",
                    )
                except OutOfTime:
                    raise
                except Exception as exc:  # one failed drain must not lose the other numbers
                    say(f"failed: {exc!r}")
                    found = {"complete": False, "error": repr(exc), "records": 0, "outcomes": {}}
                numbers["backlog"].append(
                    {"service": service, "replicas": replicas, "run": run, "numbers": found}
                )
    signal.alarm(0)
    numbers["load"].append(os.getloadavg()[0])
    if options.json:
        options.json.write_text(json.dumps(numbers, indent=2))
    sys.stdout.write(markdown(numbers))
    if not options.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
