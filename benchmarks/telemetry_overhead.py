"""What tracing costs: the platform's throughput with tracing off and on, in one run.

Each round starts the whole platform (`gridline_cli.platform`, embedded broker and Valkey,
SQLite, notify delivering to a loopback webhook) twice: tracing off, then on (by default every
trace recorded, `--sample-ratio 1.0`, exported over OTLP/gRPC to a loopback collector process
that only counts them). In each:

  1. warm-up: reports through the whole pipeline, then wait until it is idle;
  2. intake: assignment, escalation and notify are paused (SIGSTOP) so that intake has the
     machine, and `--singles` reports are posted one per request by a load generator in its
     own process (`--connections` in flight, keep-alive): requests/s, and intake's CPU time
     per request (steadier than a rate on a machine shared with other work);
  3. consumers: the three are resumed (SIGCONT) with those reports waiting on `reports.v1`;
     each service's `gridline_consumer_records_total` is sampled from its /metrics for
     `--window` seconds (or until the pipeline is idle): records/s of each consumer group over
     the time it was busy and its process's CPU time per record. Escalation and notify consume
     what assignment produces meanwhile; notify, the slowest, stays backlogged throughout.

Metrics stay on in both modes (they have no switch); the cost of the metric updates one request
and one record make is timed separately, against the time a request or record takes.

    .venv/bin/python benchmarks/telemetry_overhead.py [--rounds 3] [--singles 2000] [--window 45]
        [--sample-ratio 1.0]

Numbers go in docs/benchmarks/telemetry.md. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intake_bench import cpu_seconds as tree_cpu_seconds

from gridline.metrics import (
    CONSUMER_HANDLE_SECONDS,
    CONSUMER_RECORDS,
    HTTP_REQUEST_SECONDS,
    HTTP_REQUESTS,
)
from gridline_cli.demo import build_reports
from gridline_cli.platform import Platform, PlatformOptions
from tests.otlp_sink import OtlpSink

_CONSUMERS = {
    "assignment": "assignment.reports",
    "escalation": "escalation.tasks",
    "notify": "notify.notifications",
}
_IDLE_SECONDS = 3.0


@contextmanager
def webhook_sink() -> Iterator[str]:
    """A loopback webhook answering 200 to every delivery; its URL template."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes; with Nagle on, the body waits for the client's
        # delayed ACK (up to 40 ms a response), which would cap notify at the sink's pace.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/{{group_id}}"
    finally:
        server.shutdown()


async def _send_all(url: str, bodies: list[bytes], connections: int) -> tuple[float, list[int]]:
    """Post every body over keep-alive connections, one request in flight on each."""
    parts = urlsplit(url)
    pending = iter(bodies)
    statuses: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        for body in pending:
            writer.write(
                b"POST /v1/reports HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%b" % (parts.netloc.encode(), len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.append(int(head.split(b" ", 2)[1]))
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - started, statuses


def load_main(plan_path: Path) -> None:
    """The load generator process: post the plan's bodies, write seconds and statuses."""
    plan = json.loads(plan_path.read_text())
    bodies = [json.dumps(b, ensure_ascii=False).encode() for b in plan["bodies"]]
    seconds, statuses = asyncio.run(_send_all(plan["url"], bodies, plan["connections"]))
    plan_path.with_suffix(".result").write_text(json.dumps([seconds, statuses]))


def post_reports(url: str, bodies: list[dict[str, str]], connections: int, work: Path) -> float:
    """Post each body to /v1/reports from a load generator process; requests/s."""
    plan_path = work / "plan.json"
    plan_path.write_text(json.dumps({"url": url, "connections": connections, "bodies": bodies}))
    subprocess.run([sys.executable, __file__, "--load", str(plan_path)], check=True)
    seconds, statuses = json.loads(plan_path.with_suffix(".result").read_text())
    if set(statuses) != {202}:
        raise RuntimeError(f"unexpected answers: {sorted(set(statuses))}")
    return len(bodies) / float(seconds)


def processed(platform: Platform) -> dict[str, float]:
    """Records each consumer group has processed, from its service's /metrics."""
    assert platform.endpoints is not None
    counts = {}
    for service, group in _CONSUMERS.items():
        text = httpx.get(platform.endpoints.service_url(service) + "/metrics", timeout=5).text
        counts[service] = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "gridline_consumer_records"
            for sample in family.samples
            if sample.name.endswith("_total")
            and sample.labels.get("group") == group
            and sample.labels.get("outcome") == "processed"
        )
    return counts


def drain(platform: Platform, reports: int, window: float | None = None) -> dict[str, Any]:
    """Sample the consumers until assignment has every report and all are idle, or until
    `window` seconds have passed; each group's records and records/s while it was busy."""
    samples: list[tuple[float, dict[str, float]]] = []
    started = time.perf_counter()
    while True:
        now = time.perf_counter()
        samples.append((now, processed(platform)))
        last = samples[-1][1]
        quiet = [s for t, s in samples if now - t <= _IDLE_SECONDS]
        idle = now - started > _IDLE_SECONDS and all(s == last for s in quiet)
        if (last["assignment"] >= reports and idle) or (window and now - started >= window):
            break
        if now - started > 600:
            raise TimeoutError(f"pipeline not drained: {last}")
        time.sleep(0.25)
    first = samples[0][1]
    numbers: dict[str, Any] = {}
    for service in _CONSUMERS:
        moving = [
            t
            for (t, s), (_, p) in zip(samples[1:], samples, strict=False)
            if s[service] != p[service]
        ]
        handled = last[service] - first[service]
        if not moving:
            numbers[service] = {"records": 0, "per_second": 0.0}
            continue
        # From the last sample before it moved (the group rejoining after the pause) to the
        # last sample at which it had moved.
        begun = max(t for t, s in samples if s[service] == first[service])
        numbers[service] = {"records": handled, "per_second": handled / (max(moving) - begun)}
    return numbers


def cpu_seconds(platform: Platform, service: str) -> float:
    """CPU time a service process has used (user and system)."""
    return tree_cpu_seconds([platform.processes[service].pid])


def signal_consumers(platform: Platform, signum: signal.Signals) -> None:
    """Pause or resume the three consumer services."""
    for service in _CONSUMERS:
        platform.processes[service].send_signal(signum)


def one_run(traced: bool, args: argparse.Namespace, work: Path, seed: int) -> dict[str, Any]:
    """One platform, one mode: intake's requests/s and the consumers' records/s."""
    sink = OtlpSink(work / "spans.count", count_only=True) if traced else None
    with sink or nullcontext(), webhook_sink() as hook:
        env = {
            "GRIDLINE_NOTIFY_WEBHOOK_URL": hook,
            "GRIDLINE_LOG_LEVEL": "WARNING",
            "GRIDLINE_INTAKE_RATE_PER_SECOND": "1000000",
            "GRIDLINE_INTAKE_RATE_BURST": "1000000",
        }
        if sink is not None:
            env |= {
                "GRIDLINE_OTLP_ENDPOINT": sink.endpoint,
                "GRIDLINE_TRACE_SAMPLE_RATIO": str(args.sample_ratio),
            }
        platform = Platform(
            PlatformOptions(data_dir=work / "platform", ack_deadline_seconds=3600, extra_env=env)
        )
        with platform:
            assert platform.endpoints is not None
            intake = platform.endpoints.service_url("intake")
            reports = [r.body for r in build_reports(args.warm + args.singles, seed)]
            post_reports(intake, reports[: args.warm], args.connections, work)
            drain(platform, args.warm)
            load_before = os.getloadavg()[0]
            signal_consumers(platform, signal.SIGSTOP)
            intake_cpu = cpu_seconds(platform, "intake")
            try:
                per_second = post_reports(intake, reports[args.warm :], args.connections, work)
            finally:
                signal_consumers(platform, signal.SIGCONT)
            intake_cpu = cpu_seconds(platform, "intake") - intake_cpu
            consumers_cpu = {s: cpu_seconds(platform, s) for s in _CONSUMERS}
            consumers = drain(platform, args.warm + args.singles, args.window)
            for service in _CONSUMERS:
                used = cpu_seconds(platform, service) - consumers_cpu[service]
                records = consumers[service]["records"]
                consumers[service]["cpu_ms"] = 1000 * used / records if records else 0.0
            load_after = os.getloadavg()[0]
        spans = sink.count() if sink is not None else 0
    return {
        "intake_per_second": per_second,
        "intake_cpu_ms": 1000 * intake_cpu / args.singles,
        **consumers,
        "spans": spans,
        "load": (load_before, load_after),
    }


def metric_update_seconds() -> dict[str, float]:
    """What the metric updates of one request and of one record cost, in seconds."""
    repeat = 20_000

    def request() -> None:
        HTTP_REQUESTS.labels("/v1/reports", "POST", "202").inc()
        HTTP_REQUEST_SECONDS.labels("/v1/reports", "POST").observe(0.004)

    def record() -> None:
        CONSUMER_RECORDS.labels("reports.v1", "assignment.reports", "processed").inc()
        CONSUMER_HANDLE_SECONDS.labels("reports.v1", "assignment.reports").observe(0.004)

    return {
        "request": min(timeit.repeat(request, number=repeat, repeat=5)) / repeat,
        "record": min(timeit.repeat(record, number=repeat, repeat=5)) / repeat,
    }


def say(line: str) -> None:
    """One line of the report, at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    """Run the rounds and print the readings as Markdown."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--window", type=float, default=45.0, help="seconds the consumers run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sample-ratio", type=float, default=1.0, help="with tracing on")
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_main(args.load)
        return
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for round_number in range(args.rounds):
        for mode in ("off", "on"):
            work = Path(tempfile.mkdtemp(prefix=f"telemetry-{mode}-"))
            result = one_run(mode == "on", args, work, seed=1000 + round_number)
            runs[mode].append(result)
            say(f"round {round_number + 1} tracing {mode}: {json.dumps(result)}")

    def median(mode: str, *path: str) -> float:
        values = []
        for run in runs[mode]:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(float(value))
        return statistics.median(values)

    rows: list[tuple[str, tuple[str, ...]]] = [
        ("intake POST /v1/reports, requests/s", ("intake_per_second",))
    ]
    rows += [
        (f"{service} ({group}), records/s", (service, "per_second"))
        for service, group in _CONSUMERS.items()
    ]
    rows.append(("intake CPU ms a request", ("intake_cpu_ms",)))
    rows += [(f"{service} CPU ms a record", (service, "cpu_ms")) for service in _CONSUMERS]
    say("\n| measure | tracing off | tracing on | change |")
    say("| --- | ---: | ---: | ---: |")
    for label, path in rows:
        off, on = median("off", *path), median("on", *path)
        say(f"| {label} | {off:,.2f} | {on:,.2f} | {(on - off) / off:+.1%} |")
    spans = median("on", "spans")
    say(f"\nspans exported per tracing-on run (median): {spans:,.0f}")
    costs = metric_update_seconds()
    say(
        f"metric updates: {costs['request'] * 1e6:.1f} µs a request, "
        f"{costs['record'] * 1e6:.1f} µs a record; cores: {os.cpu_count()}; "
        f"load average now: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
