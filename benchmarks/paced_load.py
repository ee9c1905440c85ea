"""An HTTP load generator that offers requests at a fixed rate and notes when each was answered.

Unlike `http_load.py` (as fast as its connections allow, latencies only), request i of the plan
is sent at start + i / rate (or as soon as a connection is free, if all are busy then), and the
wall-clock time of each answer is kept, so that what happened to a request later (a delivery
stamped with the wall clock) can be timed from its answer. Uses `http_load.py`'s connection and
request building; unsigned requests only (intake accepts them in development).

    .venv/bin/python benchmarks/paced_load.py PLAN.json RESULT.json

PLAN: {"url", "rate", "connections", "bodies": [JSON text, ...], "path"}.
RESULT: {"seconds", "cpu_seconds", "late", "answers": [[status, sent_at, answered_at, body], ...]}.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import http_load
from http_load import Connection, Job, Signer

# A request sent this much after its slot counts as late (the generator fell behind the rate).
_LATE_SECONDS = 0.05


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Send every body at the plan's rate; each answer with its wall-clock time."""
    url = urlsplit(plan["url"])
    signer = Signer(url.netloc, None)
    jobs = [Job(method="POST", path=plan["path"], body=b.encode()) for b in plan["bodies"]]
    for job in jobs:
        job.wire = signer.build(job)
    loop = asyncio.get_running_loop()
    connections = [
        (await loop.create_connection(Connection, url.hostname, url.port))[1]
        for _ in range(plan["connections"])
    ]
    sent_at, answered_at = [0.0] * len(jobs), [0.0] * len(jobs)
    pending = iter(enumerate(jobs))
    interval = 1.0 / plan["rate"]
    late = 0

    async def worker(connection: Connection) -> None:
        nonlocal late
        for index, job in pending:
            delay = started + index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -_LATE_SECONDS:
                late += 1
            sent_at[index] = time.time()
            job.status, job.answer, _ = await connection.exchange(job.wire)
            answered_at[index] = time.time()

    cpu_started, started = time.process_time(), loop.time()
    await asyncio.gather(*(worker(c) for c in connections))
    seconds, cpu = loop.time() - started, time.process_time() - cpu_started
    for connection in connections:
        connection.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "late": late,
        "answers": [
            [job.status, sent, answered, job.answer.decode()]
            for job, sent, answered in zip(jobs, sent_at, answered_at, strict=True)
        ],
    }


if __name__ == "__main__":
    http_load.main(run)
