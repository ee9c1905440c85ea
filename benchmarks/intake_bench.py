"""Intake's throughput beside its baselines, measured in one run on one machine.

Starts an embedded broker (tansu, in memory, 3 partitions) and registers one integrator, then
measures, one after another:
  1. a raw aiokafka producer (acks=all) to that broker: records/s and p99 of send_and_wait;
  2. a bare FastAPI endpoint on the same server stack (uvicorn, one process): requests/s, p99;
  3. intake: signed single reports/s and p99 (valid feed records, each confirmed);
  4. intake: signed batches of 1,000 records, two in flight: records/s.

HTTP load comes from `benchmarks/http_load.py` in its own process, with every request built and
signed before the timed phase; its own CPU time is reported, as are the servers', Redis's (one
embedded Valkey shared by the intake processes) and the broker's. At the end the records on the
reports topic are counted: every 202 and every accepted record of a batch must be there.
`--processes 2` runs two intake (and two bare) processes with the load spread over them, as two
pods behind a load balancer would be.

    .venv/bin/python benchmarks/intake_bench.py [--singles 20000] [--batches 30]
        [--connections 32] [--processes 1]

Numbers go in docs/benchmarks/intake.md. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridline.bus import topics
from gridline.bus.envelope import EVENT_ID_HEADER
from gridline.bus.topics import ensure_topics
from gridline.embedded import EmbeddedBroker, EmbeddedValkey, free_port, stop_process
from gridline.settings import Settings
from gridline_cli.demo import build_reports
from services.intake import integrator_admin

_LOAD = Path(__file__).resolve().parent / "http_load.py"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PARTITIONS = 3


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # a thread that ended since the listing: it has no children to count
        for child in children:
            found += _tree(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds used so far by these processes and their descendants."""
    total = 0
    for pid in {p for root in pids for p in _tree(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


class Meter:
    """CPU seconds of named process trees over one measured phase."""

    def __init__(self, trees: dict[str, list[int]]) -> None:
        self._trees = trees
        self._started = {name: cpu_seconds(pids) for name, pids in trees.items()}

    def used(self) -> dict[str, float]:
        """CPU seconds each tree used since the meter was made."""
        return {name: cpu_seconds(pids) - self._started[name] for name, pids in self._trees.items()}


def load(plan: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run the load generator process on a plan; its result."""
    plan_path, result_path = work / "plan.json", work / "result.json"
    plan_path.write_text(json.dumps(plan))
    subprocess.run([sys.executable, str(_LOAD), str(plan_path), str(result_path)], check=True)
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def http_numbers(result: dict[str, Any], expected: int, count: int) -> dict[str, Any]:
    """Rate and latency of a load run in which every request must end with `expected`."""
    if result["statuses"] != {str(expected): count}:
        raise RuntimeError(f"unexpected answers: {result['statuses']}")
    latencies = result["latencies"]
    return {
        "per_second": count / result["seconds"],
        "p99_ms": _p99(latencies),
        "median_ms": statistics.median(latencies) * 1000,
        "load_cpu": result["cpu_seconds"] / result["seconds"],
        "retries": result["retries"],
    }


async def raw_producer(bootstrap: str, count: int, in_flight: int) -> dict[str, Any]:
    """aiokafka send_and_wait, acks=all, report-sized payloads, `in_flight` at a time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    payload = os.urandom(420)
    latencies: list[float] = []
    indexes = iter(range(count))

    async def worker() -> None:
        for i in indexes:
            started = time.perf_counter()
            await producer.send_and_wait("bench.raw", payload, key=str(i).encode())
            latencies.append(time.perf_counter() - started)

    try:
        cpu_started, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await producer.stop()
    return {
        "per_second": count / seconds,
        "p99_ms": _p99(latencies),
        "median_ms": statistics.median(latencies) * 1000,
        "load_cpu": cpu / seconds,
        "seconds": seconds,
    }


class BareBody(BaseModel):
    """A body the bare endpoint validates, so it parses JSON like intake does."""

    source: str
    name: str


def serve_bare(port: int) -> None:
    """A bare endpoint on the same stack: FastAPI + pydantic body + uvicorn, no work."""
    app = FastAPI()

    @app.post("/bare", status_code=202)
    async def bare(body: BareBody) -> dict[str, str]:
        return {"status": "accepted", "source": body.source}

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _wait_ready(url: str, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


def feed_bodies(count: int, run: str) -> list[dict[str, object]]:
    """Valid feed records with distinct record ids (realistic: each is claimed in Redis)."""
    base = build_reports(200, seed=7)
    bodies = []
    for i in range(count):
        body = dict(base[i % len(base)].body)
        body.update(source="health_code_feed", source_record_id=f"{run}-{i:07d}")
        body.pop("cadre_id", None)
        body.pop("checkpoint_id", None)
        body.pop("health_code", None)
        body.setdefault("origin_risk", "medium")
        bodies.append(body)
    return bodies


def _posts(path: str, bodies: list[Any]) -> list[dict[str, str]]:
    return [
        {"method": "POST", "path": path, "body": json.dumps(b, ensure_ascii=False)} for b in bodies
    ]


async def register_integrator(work: Path) -> dict[str, str]:
    """An integrator allowed to post feed records, in the intake database of `work`."""
    # As `gridline integrators create` does: the database made as intake makes it (migrations).
    issued = await integrator_admin.create(
        Settings(data_dir=work), "benchmark feed", ["health_code_feed"]
    )
    return {"key_id": issued.key_id, "secret": issued.secret}


async def records_on(bootstrap: str, topic: str, partitions: int) -> tuple[int, int]:
    """Records on a topic and their distinct event ids, read from the start.

    Read rather than taken from end offsets, which tansu undercounts for batches of records.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records, event_ids = 0, set[bytes]()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        while batches := await consumer.getmany(timeout_ms=3000, max_records=10_000):
            for batch in batches.values():
                records += len(batch)
                event_ids.update(dict(r.headers)[EVENT_ID_HEADER] for r in batch)
    finally:
        await consumer.stop()
    return records, len(event_ids)


def _valkey_pid() -> int:
    """The embedded Valkey this process started (its only valkey child)."""
    for child in _tree(os.getpid())[1:]:
        if "valkey" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
            return child
    raise RuntimeError("no valkey process found")


def _row(name: str, numbers: dict[str, Any]) -> str:
    cpu = ", ".join(
        f"{numbers[k]:.2f}" if k in numbers else "–"
        for k in ("load_cpu", "server_cpu", "redis_cpu", "broker_cpu")
    )
    note = f" ({numbers['retries']} reposted)" if numbers.get("retries") else ""
    return (
        f"| {name}{note} | {numbers['per_second']:,.0f} | {numbers['p99_ms']:.1f} | "
        f"{numbers['median_ms']:.1f} | {cpu} |"
    )


def main() -> None:
    """Run every measurement and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--singles", type=int, default=20000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32, help="requests in flight")
    parser.add_argument(
        "--processes", type=int, default=1, help="intake (and bare) processes, as pods"
    )
    parser.add_argument("--serve-bare", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        serve_bare(options.serve_bare)
        return
    work = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    broker = EmbeddedBroker(log_path=work / "broker.log")
    broker.start()
    # One Redis for every intake process, as in a deployment (and metered on its own).
    valkey = EmbeddedValkey()
    valkey.start()
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[str, Any]] = {}
    load_average = [os.getloadavg()]
    connections = options.connections
    try:
        asyncio.run(ensure_topics(broker.bootstrap, PARTITIONS, 1, (topics.REPORTS, "bench.raw")))
        key = asyncio.run(register_integrator(work))
        env = {
            **os.environ,
            "GRIDLINE_DATA_DIR": str(work),
            "GRIDLINE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "GRIDLINE_KAFKA_IDEMPOTENCE": "false",
            "GRIDLINE_REDIS_URL": valkey.url,
            "GRIDLINE_INTAKE_REQUIRE_SIGNATURES": "true",
            "GRIDLINE_LOG_LEVEL": "WARNING",
            # One integrator sends everything: its rate limit would measure itself.
            "GRIDLINE_INTAKE_RATE_PER_SECOND": "1000000",
            "GRIDLINE_INTAKE_RATE_BURST": "1000000",
        }
        bare_urls, intake_urls = [], []
        bares, intakes = [], []
        for n in range(options.processes):
            bare_port, intake_port = free_port(), free_port()
            bares.append(
                _start(
                    [sys.executable, __file__, "--serve-bare", str(bare_port)],
                    env,
                    work / f"bare{n}.log",
                )
            )
            intakes.append(
                _start(
                    [sys.executable, "-m", "services.intake"],
                    {**env, "GRIDLINE_INTAKE_HTTP_PORT": str(intake_port)},
                    work / f"intake{n}.log",
                )
            )
            bare_urls.append(f"http://127.0.0.1:{bare_port}")
            intake_urls.append(f"http://127.0.0.1:{intake_port}")
        processes += bares + intakes
        for url in bare_urls:
            _wait_ready(url, "/docs")
        for url in intake_urls:
            _wait_ready(url, "/readyz")
        run = f"bench{time.time_ns()}"
        singles = feed_bodies(options.singles, run + "s")
        batch_bodies = feed_bodies(options.batches * 1000, run + "b")
        batches = [
            {"records": batch_bodies[i : i + 1000]} for i in range(0, len(batch_bodies), 1000)
        ]
        warm = feed_bodies(1000, run + "w")
        # Warm up each path (connections, imports, first metadata fetch, every process).
        load({"urls": intake_urls, "connections": connections, "key": key,
              "requests": _posts("/v1/reports", warm)}, work)  # fmt: skip
        load({"urls": bare_urls, "connections": connections,
              "requests": _posts("/bare", warm)}, work)  # fmt: skip
        assert broker.process is not None
        trees = {
            "server": [p.pid for p in intakes],
            "redis": [_valkey_pid()],
            "broker": [broker.process.pid],
        }

        meter = Meter({"broker": trees["broker"]})
        raw = asyncio.run(raw_producer(broker.bootstrap, options.singles, connections))
        results["raw aiokafka producer (send_and_wait, acks=all)"] = {
            **raw,
            **{f"{k}_cpu": v / raw["seconds"] for k, v in meter.used().items()},
        }
        meter = Meter({"server": [p.pid for p in bares]})
        outcome = load(
            {"urls": bare_urls, "connections": connections, "requests": _posts("/bare", singles)},
            work,
        )
        results["bare FastAPI endpoint, same stack"] = {
            **http_numbers(outcome, 202, len(singles)),
            **{f"{k}_cpu": v / outcome["seconds"] for k, v in meter.used().items()},
        }
        load_average.append(os.getloadavg())
        meter = Meter(trees)
        outcome = load(
            {"urls": intake_urls, "connections": connections, "key": key,
             "requests": _posts("/v1/reports", singles)},
            work,
        )  # fmt: skip
        results["intake POST /v1/reports (single, signed)"] = {
            **http_numbers(outcome, 202, len(singles)),
            **{f"{k}_cpu": v / outcome["seconds"] for k, v in meter.used().items()},
        }
        load_average.append(os.getloadavg())
        meter = Meter(trees)
        outcome = load(
            {"urls": intake_urls, "connections": 2, "key": key, "keep_answers": True,
             "requests": _posts("/v1/reports:batch", batches)},
            work,
        )  # fmt: skip
        used = meter.used()
        for answer in outcome["answers"]:
            counts = json.loads(answer)["counts"]
            if counts.get("accepted", 0) + counts.get("duplicate", 0) != 1000:
                raise RuntimeError(f"batch: {counts}")
        results["intake POST /v1/reports:batch (1,000 a batch, 2 in flight, signed)"] = {
            **http_numbers(outcome, 200, len(batches)),
            "per_second": len(batch_bodies) / outcome["seconds"],
            **{f"{k}_cpu": v / outcome["seconds"] for k, v in used.items()},
        }
        load_average.append(os.getloadavg())
        published, distinct = asyncio.run(records_on(broker.bootstrap, topics.REPORTS, PARTITIONS))
        expected = len(warm) + len(singles) + len(batch_bodies)
    finally:
        for process in processes:
            stop_process(process)
        valkey.stop()
        broker.stop()
    lines = [
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "load average (1 min) before, after bare, after single, after batch: "
        + ", ".join(f"{a[0]:.2f}" for a in load_average),
        f"{connections} requests in flight (batches: 2) from {_LOAD.name} in its own process; "
        f"{options.processes} intake process(es), {options.processes} bare",
        f"records on {topics.REPORTS}: {published} ({distinct} distinct), accepted: {expected}",
        "",
        "| what | per second | p99 ms | median ms | CPU cores: load, server, redis, broker |",
        "| --- | ---: | ---: | ---: | --- |",
        *(_row(name, numbers) for name, numbers in results.items()),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    if published != expected or distinct != expected:
        raise SystemExit(f"records lost or doubled: {published} on the topic, {expected} accepted")


if __name__ == "__main__":
    main()
