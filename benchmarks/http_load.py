"""A cheap HTTP/1.1 load generator, run as its own process so it is not part of what it measures.

Reads a plan (JSON: urls, connections, requests as method, path, body and whether to sign them),
builds and signs every request before the timed phase, then sends them over keep-alive
connections with a plain asyncio protocol (uvloop), one request in flight per connection.
A request answered 429 or 503 is signed again with a new nonce and sent again after its
Retry-After, as a client would. Writes JSON: seconds, latencies of first answers, statuses,
retries and the generator's own CPU seconds.

    .venv/bin/python benchmarks/http_load.py PLAN.json RESULT.json
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.intake.signing import signed_headers

_RETRY_STATUSES = (429, 503)
_MAX_ATTEMPTS = 20


@dataclass
class Job:
    """One request of the plan and how it went."""

    method: str
    path: str
    body: bytes
    wire: bytes = b""
    attempts: int = 0
    status: int = 0
    answer: bytes = b""
    latencies: list[float] = field(default_factory=list)


class Signer:
    """Builds the bytes of a request, signed when the plan has a key."""

    def __init__(self, host: str, key: dict[str, str] | None) -> None:
        self._host = host
        self._key = key

    def build(self, job: Job) -> bytes:
        """The whole request; a new nonce each time, so a resend is not a replay."""
        headers = {
            "Host": self._host,
            "Content-Type": "application/json",
            "Content-Length": str(len(job.body)),
        }
        if self._key:
            headers |= signed_headers(
                self._key["key_id"],
                self._key["secret"],
                job.method,
                job.path,
                job.body,
                int(time.time()),
                secrets.token_hex(12),
            )
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return f"{job.method} {job.path} HTTP/1.1\r\n{head}\r\n".encode() + job.body


class Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight; answers go to a future."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes, dict[bytes, bytes]]] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        lines = bytes(self._buffer[:end]).split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        if len(self._buffer) < end + 4 + length:
            return
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        del self._buffer[: end + 4 + length]
        waiter, self._waiter = self._waiter, None
        waiter.set_result((int(lines[0].split()[1]), body, headers))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def exchange(self, request: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
        """Send one request; its status, body and headers."""
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Send every request of the plan; the measurements."""
    urls = [urlsplit(u) for u in plan["urls"]]
    signer = Signer(urls[0].netloc, plan.get("key"))
    jobs = [
        Job(method=r["method"], path=r["path"], body=r["body"].encode()) for r in plan["requests"]
    ]
    for job in jobs:
        job.wire = signer.build(job)
    loop = asyncio.get_running_loop()
    # Connections go round the servers, as a load balancer in front of several would send them.
    connections = [
        (await loop.create_connection(Connection, url.hostname, url.port))[1]
        for url in (urls[i % len(urls)] for i in range(plan["connections"]))
    ]
    pending = iter(jobs)
    retries = 0

    async def worker(connection: Connection) -> None:
        nonlocal retries
        for job in pending:
            while True:
                job.attempts += 1
                started = time.perf_counter()
                job.status, job.answer, headers = await connection.exchange(job.wire)
                job.latencies.append(time.perf_counter() - started)
                if job.status not in _RETRY_STATUSES or job.attempts >= _MAX_ATTEMPTS:
                    break
                retries += 1
                await asyncio.sleep(float(headers.get(b"retry-after", b"1")) / 5)
                job.wire = signer.build(job)

    cpu_started, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    for connection in connections:
        connection.close()
    statuses: dict[str, int] = {}
    for job in jobs:
        statuses[str(job.status)] = statuses.get(str(job.status), 0) + 1
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "latencies": [job.latencies[0] for job in jobs],
        "statuses": statuses,
        "retries": retries,
        "answers": [job.answer.decode() for job in jobs] if plan.get("keep_answers") else [],
    }


def main(runner: Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]] = run) -> None:
    """Read the plan (argv 1), run it with `runner`, write the result (argv 2)."""
    plan = json.loads(Path(sys.argv[1]).read_text())
    result = uvloop.run(runner(plan))
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
