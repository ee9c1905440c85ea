"""Assignment as it runs: real broker, real database, HTTP API and gRPC, demo county loaded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import Message

from gridline.bus import topics
from gridline.bus.consumer import ConsumerRunner
from gridline.bus.envelope import Envelope, decode
from gridline.bus.output import event_output
from gridline.bus.producer import EventProducer
from gridline.bus.topics import ensure_topics
from gridline.contracts.v1 import common_pb2, directory_pb2, directory_pb2_grpc, events_pb2
from gridline.db import Database
from gridline.embedded import EmbeddedBroker, free_port
from gridline.settings import Settings
from gridline.timestamps import now
from services.assignment.app import create_app
from services.assignment.consumers import GROUP, TASKS_GROUP
from services.escalation import consumers as escalation_consumers
from services.escalation import storage as escalation_storage
from services.escalation.deadlines import DeadlineWatcher, fire_due
from services.escalation.domain import HIGH_RISK_REASON
from services.escalation.policy import load_policy
from tests.escalation.records import published
from tests.helpers import eventually
from tests.staff.tokens import bearer

HOUSEHOLD = "cm03-g02-b02-u2-201"
ADDRESS = "皋兰县石洞镇三川社区文化苑2号楼2单元201室"


class Assignment:
    """The running service: its HTTP client, its gRPC stub and a producer of reports."""

    def __init__(
        self, http: httpx.AsyncClient, stub: directory_pb2_grpc.DirectoryStub, producer: Any
    ) -> None:
        self.http = http
        self.stub = stub
        self.producer = producer
        self.sent: dict[str, Envelope] = {}

    async def report(
        self,
        region_code: str,
        address: str = ADDRESS,
        *,
        source: int = common_pb2.REPORT_SOURCE_SELF_REPORT,
        risk: int = common_pb2.RISK_LEVEL_LOW,
        case_of: str = "",
    ) -> str:
        """Publish an accepted report, as intake does (`case_of`: a later report of the person
        who the report `case_of` opened the case of); its id."""
        report_id = f"r-{uuid.uuid4().hex[:12]}"
        report = events_pb2.ReportAccepted(
            report_id=report_id,
            person_key=f"k-{case_of or report_id}",
            source=source,  # type: ignore[arg-type]
            name_masked="张*",
            id_number_masked="**************0011",
            phone_masked="138****0000",
            origin_region_code=region_code,
            origin_name="长春市南关区",
            origin_risk=risk,  # type: ignore[arg-type]
            address=address,
            case_report_id=case_of,
        )
        self.sent[report_id] = Envelope(event_id=report_id, key=report.person_key, message=report)
        await self.producer.publish(topics.REPORTS, self.sent[report_id])
        return report_id

    async def placement(self, report_id: str) -> directory_pb2.Placement:
        """The placement once assignment has consumed the report."""
        found: list[directory_pb2.Placement] = []

        async def placed() -> bool:
            try:
                found.append(
                    await self.stub.GetPlacement(
                        directory_pb2.GetPlacementRequest(report_id=report_id), timeout=5
                    )
                )
                return True
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND
                return False

        await eventually(placed, within=60)
        return found[-1]


@pytest.fixture
async def assignment(broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Assignment]:
    await ensure_topics(
        broker.bootstrap, 1, 1, (topics.REPORTS, topics.TASKS, topics.NOTIFICATIONS)
    )
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        data_dir=tmp_path,
        seed_demo_county=True,
        directory_grpc_port=free_port(),
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://a", headers=bearer(tmp_path)
        ) as http,
        grpc.aio.insecure_channel(f"127.0.0.1:{settings.directory_grpc_port}") as channel,
        EventProducer(settings) as producer,
    ):
        yield Assignment(http, directory_pb2_grpc.DirectoryStub(channel), producer)


async def test_a_risk_area_change_decides_the_next_report_not_earlier_ones(
    assignment: Assignment,
) -> None:
    before = await assignment.placement(await assignment.report("220102"))
    assert before.measure_id == "report_only"
    assert before.policy_version == "gaolan-2022-01"

    changed = await assignment.http.post(
        "/v1/risk-areas", json={"region_code": "220100", "level": "high"}
    )
    assert changed.status_code == 201, changed.text
    after = await assignment.placement(await assignment.report("220102"))
    assert after.measure_id == "home_quarantine_14d"
    elsewhere = await assignment.placement(await assignment.report("510104"))
    assert elsewhere.measure_id == "report_only"

    again = await assignment.stub.GetPlacement(
        directory_pb2.GetPlacementRequest(report_id=before.report_id), timeout=5
    )
    assert again.measure_id == "report_only"

    lowered = await assignment.http.post(
        "/v1/risk-areas", json={"region_code": "220102", "level": "medium"}
    )
    assert lowered.status_code == 201
    latest = await assignment.placement(await assignment.report("220102"))
    assert latest.measure_id == "home_monitoring_7d"
    history = (await assignment.http.get("/v1/risk-areas/history")).json()
    assert [(h["region_code"], h["level"]) for h in history] == [
        ("220100", "high"), ("220102", "medium"),
    ]  # fmt: skip
    current = {
        a["region_code"]: a["level"] for a in (await assignment.http.get("/v1/risk-areas")).json()
    }
    assert current == {"220100": "high", "220102": "medium"}


async def test_bad_risk_area_changes_are_refused_with_the_field(assignment: Assignment) -> None:
    bad = await assignment.http.post(
        "/v1/risk-areas", json={"region_code": "22", "level": "severe"}
    )
    assert bad.status_code == 422
    assert bad.json()["rule"] == "request.invalid"
    assert {d["field"] for d in bad.json()["errors"]} == {"region_code", "level"}
    assert (await assignment.http.get("/v1/risk-areas/history")).json() == []


async def test_a_cadre_put_on_leave_through_the_api_gets_no_new_tasks(
    assignment: Assignment,
) -> None:
    first = await assignment.placement(await assignment.report("510104"))
    cadre = first.assignee_id
    assert cadre.startswith("p-cadre-")
    backup = "p-cadre-0001" if cadre != "p-cadre-0001" else "p-cadre-0002"
    put = await assignment.http.put(
        f"/v1/cadres/{cadre}/duty", json={"on_leave": True, "backup_id": backup}
    )
    assert put.status_code == 200, put.text
    during = [await assignment.placement(await assignment.report("510104")) for _ in range(3)]
    assert {p.assignee_id for p in during} == {backup}
    refused = await assignment.http.put(
        f"/v1/cadres/{cadre}/duty", json={"on_leave": True, "backup_id": "p-county"}
    )
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert (error["field"], error["rule"]) == ("backup_id", "duty.backup_invalid")
    assert "须是另一名包户干部" in refused.json()["detail"]


async def consumed_everything(bootstrap: str, topic: str, group: str) -> bool:
    """Whether the group has committed every record now on the topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        committed = {tp: await consumer.committed(tp) or 0 for tp in ends}
        return all(committed[tp] >= end for tp, end in ends.items())
    finally:
        await consumer.stop()


async def test_completed_tasks_stop_counting_as_open_load(
    assignment: Assignment, broker: EmbeddedBroker
) -> None:
    placed = [await assignment.placement(await assignment.report("510104")) for _ in range(2)]
    cadre = placed[0].assignee_id
    assert {p.assignee_id for p in placed} == {cadre}

    async def open_tasks() -> int:
        listed = await assignment.stub.ListCadreLoad(
            directory_pb2.ListCadreLoadRequest(grid_id="cm03-g02"), timeout=5
        )
        count: int = next(c.open_tasks for c in listed.cadres if c.person_id == cadre)
        return count

    assert await open_tasks() == 2
    for attempt in range(2):  # the second completion of the same task changes nothing
        done = events_pb2.TaskEvent(
            task_id=placed[0].task_id, kind=events_pb2.TASK_EVENT_KIND_COMPLETED, actor="cadre"
        )
        await assignment.producer.publish(
            topics.TASKS,
            Envelope(event_id=f"done-{placed[0].task_id}-{attempt}", key="k", message=done),
        )

    async def one_left() -> bool:
        return await open_tasks() == 1

    await eventually(one_left, within=60)

    async def both_completions_applied() -> bool:
        return await consumed_everything(broker.bootstrap, topics.TASKS, TASKS_GROUP)

    await eventually(both_completions_applied, within=60)
    assert await open_tasks() == 1
    # The household's own cadre still takes its next report, whatever the grid's load.
    after = await assignment.placement(await assignment.report("510104"))
    assert after.assignee_id == cadre
    assert await open_tasks() == 2


async def events_on(bootstrap: str, topic: str) -> list[Message]:
    """Every event now on a topic, oldest first."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Message] = []
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                    found.extend(decode(r.key, r.value, list(r.headers)).message for r in records)
        return found
    finally:
        await consumer.stop()


async def test_two_sources_reporting_one_person_make_one_case_told_once(
    assignment: Assignment, broker: EmbeddedBroker
) -> None:
    first = await assignment.placement(await assignment.report("510104"))
    later_id = await assignment.report(
        "220102",
        source=common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN,
        risk=common_pb2.RISK_LEVEL_HIGH,
        case_of=first.report_id,
    )
    later = await assignment.placement(later_id)
    assert (later.task_id, later.case_report_id) == (first.task_id, first.report_id)
    assert (first.node_id, first.grid_id) == (HOUSEHOLD, "cm03-g02")
    assert (later.node_id, later.grid_id) == (first.node_id, first.grid_id)
    await assignment.producer.publish(topics.REPORTS, assignment.sent[later_id])  # a replay

    async def replay_consumed() -> bool:
        return await consumed_everything(broker.bootstrap, topics.REPORTS, GROUP)

    await eventually(replay_consumed, within=60)
    tasks = [
        e for e in await events_on(broker.bootstrap, topics.TASKS)
        if isinstance(e, events_pb2.TaskEvent) and e.task_id == first.task_id
    ]  # fmt: skip
    notices = [
        n for n in await events_on(broker.bootstrap, topics.NOTIFICATIONS)
        if isinstance(n, events_pb2.Notification) and n.task_id == first.task_id
    ]  # fmt: skip
    # The higher risk went to escalation once, the replay notwithstanding.
    assert [(t.kind, t.report_id) for t in tasks] == [
        (events_pb2.TASK_EVENT_KIND_ASSIGNED, first.report_id),
        (events_pb2.TASK_EVENT_KIND_RISK_RAISED, first.report_id),
    ]
    assert tasks[1].raised_by_report_id == later_id
    [enriched] = [n for n in notices if n.kind == events_pb2.NOTIFICATION_KIND_CASE_ENRICHED]
    assert enriched.report_id == later_id
    assert enriched.recipient.group_id == tasks[0].assignee.group_id
    assert enriched.title == "同一人员再次被报告：风险更高"
    listed = await assignment.stub.ListCadreLoad(
        directory_pb2.ListCadreLoadRequest(grid_id="cm03-g02"), timeout=5
    )
    assert {c.person_id: c.open_tasks for c in listed.cadres}[first.assignee_id] == 1


DEADLINES = Path(__file__).parents[2] / "services/escalation/deadlines.yaml"


async def test_a_higher_risk_report_escalates_the_case_task_once_and_its_replays_add_nothing(
    assignment: Assignment, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap=broker.bootstrap, kafka_idempotence=False, data_dir=tmp_path / "escalation"
    )
    policy = load_policy(DEADLINES, timedelta(minutes=30))

    async def chain(node_id: str) -> list[common_pb2.Responsible]:
        request = directory_pb2.GetChainRequest(node_id=node_id)
        return list((await assignment.stub.GetChain(request, timeout=5)).levels)

    async with (
        Database(settings, "escalation", escalation_storage.TABLES) as db,
        event_output(settings, db) as outbox,
        ConsumerRunner(
            settings=settings,
            topic=topics.TASKS,
            group=escalation_consumers.GROUP,
            handler=escalation_consumers.task_handler(policy),
            accepts=escalation_consumers.accepts,
            db=db,
        ),
        DeadlineWatcher(db, chain, policy, tick=0.1),
    ):
        first_id = await assignment.report("510104", risk=common_pb2.RISK_LEVEL_MEDIUM)
        first = await assignment.placement(first_id)
        later_id = await assignment.report(
            "220102",
            source=common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN,
            risk=common_pb2.RISK_LEVEL_HIGH,
            case_of=first_id,
        )

        async def escalated() -> bool:
            async with db.session() as session:
                return bool(await escalation_storage.escalations_of(session, first.task_id))

        await eventually(escalated, within=60)

        async def raises() -> list[Envelope]:
            return [
                e for e in await published(broker.bootstrap, topics.TASKS, after=outbox)
                if isinstance(e.message, events_pb2.TaskEvent)
                and (e.message.task_id, e.message.kind)
                == (first.task_id, events_pb2.TASK_EVENT_KIND_RISK_RAISED)
            ]  # fmt: skip

        [raise_event] = await raises()
        # Replays of the later report (assignment) and of the raise itself (escalation).
        await assignment.producer.publish(topics.REPORTS, assignment.sent[later_id])
        await assignment.producer.publish(topics.TASKS, raise_event)

        async def replays_consumed() -> bool:
            applied = [
                await consumed_everything(broker.bootstrap, topic, group)
                for topic, group in (
                    (topics.REPORTS, GROUP),
                    (topics.TASKS, escalation_consumers.GROUP),
                )
            ]
            return all(applied)

        await eventually(replays_consumed, within=60)
        # Whatever a replay had made due would fire now.
        await fire_due(db, chain, policy, now())
        assert len(await raises()) == 2  # the first and the one replayed here: none from assignment

        async with db.session() as session:
            task = await escalation_storage.get_task(session, first.task_id)
            raised = list(await escalation_storage.escalations_of(session, first.task_id))
            trail = list(await escalation_storage.changes_of(session, first.task_id))

    community = (await chain(first.node_id))[2]
    assert community.level == common_pb2.CHAIN_LEVEL_COMMUNITY
    assert [(e.level, e.group_id, e.reason) for e in raised] == [
        (community.level, community.group_id, HIGH_RISK_REASON)
    ]
    assert task is not None
    assert (task.state, task.origin_risk, task.measure_id) == (
        "assigned", common_pb2.RISK_LEVEL_HIGH, "home_quarantine_14d"
    )  # fmt: skip
    assert [(c.action, c.actor, c.channel) for c in trail] == [
        ("raise_risk", "assignment", "system")
    ]
    assert f"报告{later_id}显示高风险" in trail[0].note and "风险由中升为高" in trail[0].note
    told_at_once = [
        e.message for e in await published(broker.bootstrap, topics.NOTIFICATIONS, after=None)
        if isinstance(e.message, events_pb2.Notification) and e.message.task_id == first.task_id
        and e.message.title == HIGH_RISK_REASON
    ]  # fmt: skip
    assert [n.recipient.group_id for n in told_at_once] == [community.group_id]
