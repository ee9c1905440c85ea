"""Traces and logs keep no link signature, robot key, SQL parameter or personal number: real
instrumented calls over loopback into an in-memory exporter, a real DB error into a log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from gridline.db import Database
from gridline.embedded import free_port
from gridline.logging import configure_logging, get_logger
from gridline.settings import Settings
from gridline.tracing import Tracing, build_provider

SIGNATURE = "c2lnbmF0dXJlLW9mLXRhc2s"
TASK_ID = "5f0c2b7e9a1d4c3b8e6f1a2b3c4d5e6f"
WECOM_KEY = "693a91f6-7a0c-4bc4-97a0-0ec2f1fa5aaa"
DINGTALK_TOKEN = "1f2e3d4c5b6a79881f2e3d4c5b6a7988"
FEISHU_TOKEN = "feishu-hook-1"
PHONE = "13812345678"
SECRETS = (SIGNATURE, TASK_ID, WECOM_KEY, DINGTALK_TOKEN, FEISHU_TOKEN, PHONE, "1700000000")


def loopback_app() -> FastAPI:
    """Escalation's task page and the three robots' send endpoints, answering 200."""
    app = FastAPI()

    @app.get("/t/{task_id}")
    async def task_page(task_id: str, e: str, s: str) -> dict[str, str]:
        return {"task": task_id}

    @app.post("/cgi-bin/webhook/send")
    async def wecom(key: str) -> dict[str, int]:
        return {"errcode": 0}

    @app.post("/robot/send")
    async def dingtalk(access_token: str) -> dict[str, int]:
        return {"errcode": 0}

    @app.post("/open-apis/bot/v2/hook/{token}")
    async def feishu(token: str) -> dict[str, int]:
        return {"code": 0}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"no answer from /robot/send?access_token={DINGTALK_TOKEN} for {PHONE}")

    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, InMemorySpanExporter, Tracing]]:
    """The app, traced by the platform's own provider and instrumentation, on a loopback port."""
    exporter = InMemorySpanExporter()
    tracing = Tracing(build_provider("redaction-test", 1.0, exporter), 1.0)
    app = loopback_app()
    tracing.instrument_app(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  # uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", exporter, tracing
    server.should_exit = True
    await task
    tracing.shutdown()


async def test_spans_keep_no_signature_robot_key_or_number(
    served: tuple[str, InMemorySpanExporter, Tracing],
) -> None:
    base, exporter, tracing = served
    async with httpx.AsyncClient(base_url=base) as client:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=tracing.provider)
        tracer = tracing.provider.get_tracer("test")
        # As notify sends: client calls inside a record's consumer span (the entry point).
        with tracer.start_as_current_span("process notifications.v1", kind=SpanKind.CONSUMER):
            calls = [
                client.get(f"/t/{TASK_ID}", params={"e": "1700000000", "s": SIGNATURE}),
                client.post("/cgi-bin/webhook/send", params={"key": WECOM_KEY}),
                client.post(f"/robot/send?access_token={DINGTALK_TOKEN}&sign=x&timestamp=1"),
                client.post(f"/open-apis/bot/v2/hook/{FEISHU_TOKEN}"),
                client.get(f"/people/{PHONE}"),
                client.get("/boom"),
            ]
            answers = [await call for call in calls]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 404, 500]
    tracing.provider.force_flush()
    spans = exporter.get_finished_spans()
    kinds = [span.kind for span in spans]
    assert kinds.count(SpanKind.CLIENT) == 6 and kinds.count(SpanKind.SERVER) == 6
    recorded = json.dumps(
        [
            [dict(span.attributes or {}), span.status.description]
            + [dict(event.attributes or {}) for event in span.events]
            for span in spans
        ],
        ensure_ascii=False,
    )
    assert "RuntimeError" in recorded  # the failure is still there to read
    for secret in SECRETS:
        assert secret not in recorded, secret
    urls = {
        span.attributes.get("http.url") or span.attributes.get("url.full")
        for span in spans
        if span.kind is SpanKind.CLIENT and span.attributes
    }
    assert urls == {
        f"{base}/t/REDACTED?e=REDACTED&s=REDACTED",
        f"{base}/cgi-bin/webhook/send?key=REDACTED",
        f"{base}/robot/send?access_token=REDACTED&sign=REDACTED&timestamp=REDACTED",
        f"{base}/open-apis/bot/v2/hook/REDACTED",
        f"{base}/people/138****5678",
        f"{base}/boom",
    }
    routes = {
        s.attributes.get("http.route") for s in spans if s.kind is SpanKind.SERVER and s.attributes
    }
    assert "/t/{task_id}" in routes  # what was called stays readable


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The platform's logging configuration for one test (the previous one restored after), and
    a function reading the JSON lines it wrote."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    configure_logging(Settings(log_format="json"), "redaction-test")
    written = io.StringIO()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(written)  # stderr, which pytest swaps between phases
    yield lambda: [json.loads(line) for line in written.getvalue().splitlines()]
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()
    root.handlers[:], root.level = handlers, level


async def test_a_db_error_is_logged_without_its_parameters(
    tmp_path: Path, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    people = Table(
        "people", MetaData(), Column("phone", String, primary_key=True), Column("address", String)
    )
    row = {"phone": PHONE, "address": "三和小区2号楼301室"}
    async with Database(Settings(data_dir=tmp_path), "redaction", [people]) as db:
        async with db.engine.begin() as conn:
            await conn.execute(insert(people).values(row))
        with pytest.raises(IntegrityError) as failed:
            async with db.engine.begin() as conn:
                await conn.execute(insert(people).values(row))
    log = get_logger("test")
    log.error("insert failed", error=str(failed.value), exc_info=failed.value)
    logging.getLogger("stdlib").error("insert failed: %s", failed.value)
    lines = log_lines()
    assert [line["event"].split(":")[0] for line in lines] == ["insert failed"] * 2
    written = json.dumps(lines, ensure_ascii=False)
    assert "UNIQUE constraint failed: people.phone" in written
    assert "[SQL parameters hidden due to hide_parameters=True]" in written
    assert PHONE not in written and "三和小区" not in written


def test_log_events_are_redacted_field_by_field(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    get_logger("test").warning(
        "delivery failed to https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + WECOM_KEY,
        link=f"https://g.example/t/{TASK_ID}?e=1700000000&s={SIGNATURE}",
        details={"phones": [f"+86 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}"]},
        error=ValueError("[parameters: ('13812345678',)]"),
        attempts=3,
    )
    [line] = log_lines()
    for secret in SECRETS:
        assert secret not in json.dumps(line, ensure_ascii=False), secret
    assert line["event"].endswith("send?key=REDACTED")
    assert line["link"] == "https://g.example/t/REDACTED?e=REDACTED&s=REDACTED"
    assert line["details"] == {"phones": ["+86 138****5678"]}
    assert line["error"] == "ValueError: [parameters: REDACTED]"
    assert line["attempts"] == 3
