"""Intake's HTTP API in-process, on its own real broker that the test can pause."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from gridline.bus import topics
from gridline.bus.topics import ensure_topics
from gridline.contracts.v1 import events_pb2
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.intake.app import create_app
from tests.intake.samples import VALID_REPORT

CONFIRM_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("intake-broker") / "broker.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def client(own_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(own_broker.bootstrap, 1, 1, (topics.REPORTS,))
    settings = Settings(
        kafka_bootstrap=own_broker.bootstrap,
        kafka_idempotence=False,
        kafka_confirm_timeout_seconds=CONFIRM_TIMEOUT,
        data_dir=tmp_path,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
            yield http


async def reports_on_topic(bootstrap: str) -> list[events_pb2.ReportAccepted]:
    consumer = AIOKafkaConsumer(
        topics.REPORTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found = []
    try:
        batch = await consumer.getmany(timeout_ms=2000)
        for records in batch.values():
            for record in records:
                report = events_pb2.ReportAccepted()
                report.ParseFromString(record.value)
                found.append(report)
    finally:
        await consumer.stop()
    return found


async def test_accepted_report_is_on_the_topic_sealed_and_masked(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    response = await client.post("/v1/reports", json=VALID_REPORT)
    assert response.status_code == 202
    report_id = response.json()["report_id"]
    assert response.headers["Location"] == f"/v1/reports/{report_id}"
    [report] = [r for r in await reports_on_topic(own_broker.bootstrap) if r.report_id == report_id]
    assert report.id_number_masked == "110105********002X"
    assert report.phone_masked == "138****5678"
    assert VALID_REPORT["id_number"].encode() not in report.SerializeToString()
    assert VALID_REPORT["phone"].encode() not in report.SerializeToString()
    assert len(report.person_key) == 64


async def test_idempotency_key_replays_the_original_answer_and_produces_once(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    headers = {"Idempotency-Key": "feed-batch-7-record-1"}
    first = await client.post("/v1/reports", json=VALID_REPORT, headers=headers)
    again = await client.post("/v1/reports", json=VALID_REPORT, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == {**first.json(), "replayed": True}
    on_topic = [
        r for r in await reports_on_topic(own_broker.bootstrap)
        if r.report_id == first.json()["report_id"]
    ]  # fmt: skip
    assert len(on_topic) == 1


async def test_unreachable_broker_gets_503_with_retry_after_then_recovers(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    assert own_broker.process is not None
    os.kill(own_broker.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        refused = await client.post(
            "/v1/reports", json=VALID_REPORT, headers={"Idempotency-Key": "during-outage"}
        )
        waited = time.monotonic() - started
    finally:
        os.kill(own_broker.process.pid, signal.SIGCONT)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert "nothing was accepted" in refused.json()["detail"]
    assert waited < CONFIRM_TIMEOUT + 2
    # The key was released, so the client's retry after the outage is a fresh attempt.
    for _ in range(50):
        retried = await client.post(
            "/v1/reports", json=VALID_REPORT, headers={"Idempotency-Key": "during-outage"}
        )
        if retried.status_code == 202:
            break
        await asyncio.sleep(0.2)
    assert retried.status_code == 202
    assert retried.json()["replayed"] is False
