"""Intake's HTTP API in-process, on its own real broker that the test can pause."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from gridline.bus import topics
from gridline.bus.topics import ensure_topics
from gridline.contracts.v1 import common_pb2, events_pb2
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings
from services.intake.app import create_app
from tests.helpers import eventually
from tests.intake.samples import CHECKPOINT_SCAN, FEED_RECORD, VALID_REPORT

CONFIRM_TIMEOUT = 2.5


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
    """Every report on the topic, read up to the end offsets.

    Bounded, and failing when the bound is reached: a read that stopped short would find too
    little, and a check that nothing arrived would pass for it.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found = []
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topics.REPORTS, p)
            for p in consumer.partitions_for_topic(topics.REPORTS) or set()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(30):
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
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
    assert report.id_number_masked == "**************002X"
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
    assert refused.json()["rule"] == "broker.unconfirmed"
    assert "本次未受理" in refused.json()["detail"]
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


def batch_of(count: int, bad: set[int], run: str) -> list[dict[str, Any]]:
    """Feed records with distinct record ids; those at `bad` break one rule each, in turn."""
    breakers: list[tuple[str, Any]] = [
        ("phone", "23812345678"),
        ("id_number", "110105194912310021"),
        ("origin_region_code", "990000"),
        ("arrived_at", "2022-01-28T18:40:00"),
        ("origin_risk", "extreme"),
    ]
    records = []
    for i in range(count):
        record = {**FEED_RECORD, "source_record_id": f"{run}-{i:04d}"}
        if i in bad:
            field, value = breakers[i % len(breakers)]
            record[field] = value
        records.append(record)
    return records


async def test_a_batch_of_1000_with_37_bad_puts_963_on_the_topic_once(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    bad = set(range(5, 1000, 27))
    assert len(bad) == 37
    records = batch_of(1000, bad, run=f"b{time.time_ns()}")
    first = await client.post("/v1/reports:batch", json={"records": records})
    assert first.status_code == 200
    body = first.json()
    assert body["counts"] == {"accepted": 963, "rejected": 37}
    results = body["results"]
    assert [r["index"] for r in results] == list(range(1000))
    for i in bad:
        [problem] = results[i]["problems"]
        field = problem["field"].split(".", 1)[1]
        assert problem["field"] == f"records[{i}].{field}"
        assert record_breaks(records[i], field)
        assert problem["rule"] and problem["message"]
    accepted = {r["report_id"] for r in results if r["status"] == "accepted"}
    on_topic = [r for r in await reports_on_topic(own_broker.bootstrap) if r.report_id in accepted]
    assert len(on_topic) == len({r.report_id for r in on_topic}) == 963

    again = await client.post("/v1/reports:batch", json={"records": records})
    assert again.status_code == 200
    assert again.json()["counts"] == {"duplicate": 963, "rejected": 37}
    originals = {r["index"]: r["report_id"] for r in results if r["status"] == "accepted"}
    replayed = {r["index"]: r["report_id"] for r in again.json()["results"] if r["report_id"]}
    assert replayed == originals
    after = [r for r in await reports_on_topic(own_broker.bootstrap) if r.report_id in accepted]
    assert len(after) == 963
    assert {r.source_record_id for r in after} == {
        records[i]["source_record_id"] for i in range(1000) if i not in bad
    }


def record_breaks(record: dict[str, Any], field: str) -> bool:
    """Whether the named field is the one this record was given a bad value in."""
    return bool(record[field] != FEED_RECORD.get(field))


async def test_repeats_inside_one_batch_are_duplicates_of_the_first(
    client: httpx.AsyncClient,
) -> None:
    record = {**FEED_RECORD, "source_record_id": f"twice-{time.time_ns()}"}
    response = await client.post("/v1/reports:batch", json={"records": [record, record]})
    first, second = response.json()["results"]
    assert first["status"] == "accepted"
    assert second == {**first, "index": 1, "status": "duplicate"}


async def test_concurrent_singles_of_one_record_produce_it_once(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    # Posted together, they meet in Redis in one wave: the first claims the record, the others
    # are told it is being confirmed (409) or, once it is, get its id back.
    record = {**FEED_RECORD, "source_record_id": f"together-{time.time_ns()}"}
    answers = await asyncio.gather(*(client.post("/v1/reports", json=record) for _ in range(6)))
    fresh = [a.json() for a in answers if a.status_code == 202 and not a.json()["replayed"]]
    assert len(fresh) == 1
    for answer in answers:
        assert answer.status_code in (202, 409)
        if answer.status_code == 202:
            assert answer.json()["report_id"] == fresh[0]["report_id"]
    on_topic = [
        r for r in await reports_on_topic(own_broker.bootstrap)
        if r.source_record_id == record["source_record_id"]
    ]  # fmt: skip
    assert len(on_topic) == 1


async def test_a_single_post_repeating_a_batch_record_gets_the_original_id(
    client: httpx.AsyncClient,
) -> None:
    record = {**FEED_RECORD, "source_record_id": f"then-single-{time.time_ns()}"}
    batch = await client.post("/v1/reports:batch", json={"records": [record]})
    single = await client.post("/v1/reports", json=record)
    assert single.status_code == 202
    assert single.json() == {
        "report_id": batch.json()["results"][0]["report_id"],
        "status": "accepted",
        "replayed": True,
    }


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        (b"[1, 2]", "body", "batch_shape"),
        (b'{"records": []}', "records", "batch_shape"),
        (b'{"records": [', "body", "json_invalid"),
    ],
)
async def test_a_batch_of_the_wrong_shape_is_refused_whole(
    client: httpx.AsyncClient, body: bytes, field: str, rule: str
) -> None:
    response = await client.post(
        "/v1/reports:batch", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["rule"] == "request.invalid"
    [problem] = response.json()["errors"]
    assert (problem["field"], problem["rule"]) == (field, rule)


async def test_more_than_1000_records_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/reports:batch", json={"records": [FEED_RECORD] * 1001})
    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert (problem["field"], problem["rule"]) == ("records", "batch_size")
    assert problem["detail"] == "每批最多1000条记录，本批有1001条；请分批提交"


async def test_batch_body_limit_is_larger_than_a_single_reports(
    client: httpx.AsyncClient,
) -> None:
    padded = {**FEED_RECORD, "address": "皋兰县" + " " * 1000}
    body = {"records": [padded] * 1000}  # about 1.4 MB: over the single limit, under 5 MiB
    assert (await client.post("/v1/reports", json=body)).status_code == 413
    big = await client.post("/v1/reports:batch", json={"records": [padded] * 1000 + [padded]})
    assert big.status_code == 422  # read whole and judged by its shape, not refused by size
    huge = await client.post(
        "/v1/reports:batch",
        content=b'{"records": [' + b" " * (6 * 1024 * 1024) + b"]}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413


async def test_single_refusals_name_the_field_without_the_source_tag(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/reports", json={**VALID_REPORT, "phone": "2381234567", "origin_risk": "x"}
    )
    assert response.status_code == 422
    assert [(p["field"], p["rule"]) for p in response.json()["errors"]] == [
        ("phone", "phone.mainland_mobile"),
        ("origin_risk", "literal_error"),
    ]


async def test_a_green_checkpoint_scan_of_a_local_is_cleared_and_one_from_afar_registered(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    # The county is the demo's, in Gansu: a scan of someone from Lanzhou is a resident about town.
    local = {
        **CHECKPOINT_SCAN, "health_code": "green", "name": "绿码",
        "origin_region_code": "620102", "origin_name": None,
    }  # fmt: skip
    cleared = await client.post("/v1/reports", json=local)
    assert cleared.status_code == 200
    assert cleared.json() == {"report_id": None, "status": "cleared", "replayed": False}
    # From Shanghai with a green code: an arrival from another province, registered as low risk.
    arrival = await client.post("/v1/reports", json={**CHECKPOINT_SCAN, "health_code": "green"})
    flagged = await client.post("/v1/reports", json={**local, "health_code": "red"})
    assert arrival.status_code == flagged.status_code == 202
    on_topic = {r.report_id: r for r in await reports_on_topic(own_broker.bootstrap)}
    assert on_topic[arrival.json()["report_id"]].origin_risk == common_pb2.RISK_LEVEL_LOW
    report = on_topic[flagged.json()["report_id"]]
    assert report.origin_risk == common_pb2.RISK_LEVEL_HIGH
    assert report.source == common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN


async def test_broker_paused_mid_load_every_request_gets_202_or_503_and_no_202_is_lost(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    assert own_broker.process is not None
    run = f"load-{time.time_ns()}"
    answers: list[tuple[int, str | None, float]] = []

    async def post(i: int) -> None:
        record = {**FEED_RECORD, "source_record_id": f"{run}-{i:04d}"}
        started = time.monotonic()
        response = await client.post("/v1/reports", json=record, timeout=CONFIRM_TIMEOUT + 10)
        report_id = response.json().get("report_id") if response.status_code == 202 else None
        answers.append((response.status_code, report_id, time.monotonic() - started))

    stop = asyncio.Event()

    async def load() -> None:
        # Waves of 10 concurrent posts until well after the broker is back (bounded).
        for wave in range(1000):
            if stop.is_set():
                break
            await asyncio.gather(*(post(wave * 10 + i) for i in range(10)))

    loading = asyncio.create_task(load())
    await eventually(lambda: _at_least(answers, 50), within=60)
    os.kill(own_broker.process.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(CONFIRM_TIMEOUT * 2)
    finally:
        os.kill(own_broker.process.pid, signal.SIGCONT)
    after_pause = len(answers)
    await eventually(lambda: _at_least(answers, after_pause + 100), within=60)
    stop.set()
    await asyncio.wait_for(loading, timeout=120)

    statuses = {status for status, _, _ in answers}
    assert statuses <= {202, 503}
    assert 503 in statuses and 202 in statuses
    assert max(waited for _, _, waited in answers) < CONFIRM_TIMEOUT + 5
    confirmed = {report_id for status, report_id, _ in answers if status == 202}
    on_topic = {r.report_id for r in await reports_on_topic(own_broker.bootstrap)}
    assert confirmed <= on_topic


async def _at_least(answers: list[tuple[int, str | None, float]], count: int) -> bool:
    return len(answers) >= count


async def test_metrics_count_each_record_by_outcome_and_each_problem_by_rule(
    client: httpx.AsyncClient,
) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    feed = "health_code_feed"
    counted = {
        "accepted": ("gridline_intake_reports_total", {"source": feed, "outcome": "accepted"}),
        "duplicate": ("gridline_intake_reports_total", {"source": feed, "outcome": "duplicate"}),
        "rejected": ("gridline_intake_reports_total", {"source": feed, "outcome": "rejected"}),
        "phone rule": (
            "gridline_intake_validation_problems_total",
            {"source": feed, "rule": "phone.mainland_mobile"},
        ),
    }
    before = {key: sample(name, **labels) for key, (name, labels) in counted.items()}
    good = {**FEED_RECORD, "source_record_id": f"metrics-{time.time_ns()}"}
    bad = {**good, "source_record_id": "metrics-bad", "phone": "2381234567"}
    await client.post("/v1/reports:batch", json={"records": [good, bad]})
    await client.post("/v1/reports:batch", json={"records": [good]})
    await client.post("/v1/reports", json=bad)
    after = {key: sample(name, **labels) for key, (name, labels) in counted.items()}
    assert {key: after[key] - before[key] for key in counted} == {
        "accepted": 1, "duplicate": 1, "rejected": 2, "phone rule": 2,
    }  # fmt: skip
    exposed = (await client.get("/metrics")).text
    problem = 'rule="phone.mainland_mobile",source="health_code_feed"'
    assert f"gridline_intake_validation_problems_total{{{problem}}}" in exposed


async def test_later_reports_of_a_person_join_the_first_ones_case(
    client: httpx.AsyncClient, own_broker: EmbeddedBroker
) -> None:
    person = {**VALID_REPORT, "id_number": "62010219900307123X"}
    first = await client.post("/v1/reports", json=person)
    visit = await client.post(
        "/v1/reports", json={**person, "source": "cadre_visit", "cadre_id": "cadre-0231"}
    )
    scan = await client.post(
        "/v1/reports", json={**CHECKPOINT_SCAN, "id_number": person["id_number"]}
    )
    other = await client.post("/v1/reports", json={**person, "id_number": "11010519491231002X"})
    ids = [r.json()["report_id"] for r in (first, visit, scan, other)]
    by_id = {
        r.report_id: r for r in await reports_on_topic(own_broker.bootstrap) if r.report_id in ids
    }
    assert [by_id[i].case_report_id for i in ids] == ["", ids[0], ids[0], ""]
    assert by_id[ids[0]].person_key == by_id[ids[1]].person_key != by_id[ids[3]].person_key
