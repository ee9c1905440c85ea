"""Intake's throughput beside its baselines, measured in one run on one machine.

Starts an embedded broker, then measures, one after another:
  1. raw aiokafka producer (acks=all) to that broker: records/s and p99 of send_and_wait;
  2. a bare FastAPI endpoint on the same server stack (uvicorn, one process): requests/s, p99;
  3. intake, one process: single reports/s and p99 (valid feed records, each confirmed);
  4. intake batches of 1,000 records: records/s.

    .venv/bin/python benchmarks/intake_bench.py [--singles 5000] [--batches 30]

Numbers go in docs/benchmarks/intake.md. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridline.bus import topics
from gridline.bus.topics import ensure_topics
from gridline.cli.demo import build_reports
from gridline.embedded import EmbeddedBroker, free_port, stop_process

# httpx's connection pool degrades sharply above ~8 concurrent connections (172 req/s at 64
# against the bare endpoint, 750-930 at 1-8, on this machine), so the client would measure itself.
CONCURRENCY = 8


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def _drive(count: int, call: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run `call(i)` for i < count with CONCURRENCY in flight; (seconds, latencies)."""
    latencies: list[float] = []
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, latencies


async def raw_producer(bootstrap: str, count: int) -> dict[str, float]:
    """aiokafka send_and_wait, acks=all, the same payload size as a report."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    payload = os.urandom(420)
    try:

        async def send(i: int) -> None:
            await producer.send_and_wait("bench.raw", payload, key=str(i).encode())

        seconds, latencies = await _drive(count, send)
    finally:
        await producer.stop()
    return {"per_second": count / seconds, "p99_ms": _p99(latencies)}


async def post_singles(url: str, path: str, bodies: list[dict[str, object]]) -> dict[str, float]:
    """POST each body once; every answer must be 202."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def post(i: int) -> None:
            response = await client.post(path, json=bodies[i])
            if response.status_code != 202:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

        seconds, latencies = await _drive(len(bodies), post)
    return {
        "per_second": len(bodies) / seconds,
        "p99_ms": _p99(latencies),
        "median_ms": statistics.median(latencies) * 1000,
    }


async def post_batches(url: str, batches: list[list[dict[str, object]]]) -> dict[str, float]:
    """POST batches, two in flight, as a client would: a 503 batch is posted again (reposting
    is idempotent), until every record is accepted or a duplicate of an accepted one."""
    retries = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        semaphore = asyncio.Semaphore(2)

        async def post(batch: list[dict[str, object]]) -> None:
            nonlocal retries
            async with semaphore:
                for _ in range(10):
                    response = await client.post("/v1/reports:batch", json={"records": batch})
                    if response.status_code == 200:
                        counts = response.json()["counts"]
                        if counts.get("accepted", 0) + counts.get("duplicate", 0) != len(batch):
                            raise RuntimeError(f"batch: {counts}")
                        return
                    retries += 1
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 5)
                raise RuntimeError(f"batch kept failing: {response.status_code}")

        started = time.perf_counter()
        await asyncio.gather(*(post(b) for b in batches))
        seconds = time.perf_counter() - started
    records = sum(len(b) for b in batches)
    return {"per_second": records / seconds, "seconds": seconds, "retries": retries}


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
            if httpx.get(url + path, timeout=1).status_code < 500:
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


def main() -> None:
    """Run every measurement and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--singles", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--serve-bare", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        serve_bare(options.serve_bare)
        return
    work = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    broker = EmbeddedBroker(log_path=work / "broker.log")
    broker.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(ensure_topics(broker.bootstrap, 3, 1, (topics.REPORTS, "bench.raw")))
        bare_port, intake_port = free_port(), free_port()
        env = {
            **os.environ,
            "GRIDLINE_DATA_DIR": str(work),
            "GRIDLINE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "GRIDLINE_KAFKA_IDEMPOTENCE": "false",
            "GRIDLINE_REDIS_URL": "",
            "GRIDLINE_INTAKE_HTTP_PORT": str(intake_port),
            "GRIDLINE_LOG_LEVEL": "WARNING",
            # The load comes from one address: the per-caller limit would measure itself.
            "GRIDLINE_INTAKE_RATE_PER_SECOND": "1000000",
            "GRIDLINE_INTAKE_RATE_BURST": "1000000",
        }
        processes.append(
            _start(
                [sys.executable, __file__, "--serve-bare", str(bare_port)], env, work / "bare.log"
            )
        )
        processes.append(
            _start([sys.executable, "-m", "services.intake"], env, work / "intake.log")
        )
        bare_url, intake_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{intake_port}"
        _wait_ready(bare_url, "/docs")
        _wait_ready(intake_url, "/readyz")
        run = f"bench{time.time_ns()}"
        singles = feed_bodies(options.singles, run + "s")
        batch_bodies = feed_bodies(options.batches * 1000, run + "b")
        batches = [batch_bodies[i : i + 1000] for i in range(0, len(batch_bodies), 1000)]
        # Warm up each path (connections, imports, first metadata fetch).
        asyncio.run(post_singles(intake_url, "/v1/reports", feed_bodies(200, run + "w")))
        asyncio.run(post_singles(bare_url, "/bare", singles[:200]))
        results = {
            "raw aiokafka producer (send_and_wait, acks=all)": asyncio.run(
                raw_producer(broker.bootstrap, options.singles)
            ),
            "bare FastAPI endpoint, same stack": asyncio.run(
                post_singles(bare_url, "/bare", singles)
            ),
            "intake POST /v1/reports (single)": asyncio.run(
                post_singles(intake_url, "/v1/reports", singles)
            ),
            "intake POST /v1/reports:batch (1,000 a batch)": asyncio.run(
                post_batches(intake_url, batches)
            ),
        }
    finally:
        for process in processes:
            stop_process(process)
        broker.stop()
    lines = [
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        f"load: {CONCURRENCY} in flight from one asyncio httpx client on the same machine",
        "| what | per second | p99 ms | median ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, numbers in results.items():
        p99 = f"{numbers['p99_ms']:.1f}" if "p99_ms" in numbers else "–"
        median = f"{numbers['median_ms']:.1f}" if "median_ms" in numbers else "–"
        note = (
            f" ({numbers['retries']:.0f} batches reposted after 503)"
            if "retries" in numbers
            else ""
        )
        lines.append(f"| {name}{note} | {numbers['per_second']:,.0f} | {p99} | {median} |")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
