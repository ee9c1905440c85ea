"""One report through all four services on the real embedded broker, to a loopback webhook."""

from __future__ import annotations

import asyncio
import functools
import json
import random

import grpc
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gridline.bus import topics
from gridline.contracts.v1 import (
    common_pb2,
    directory_pb2,
    directory_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from gridline.directory_client import DirectoryClient
from gridline.tasks_client import TasksClient
from gridline_cli.demo import build_reports
from gridline_cli.platform import Platform
from services.assignment.directory import Directory
from tests.conftest import ReceivedRequest, WebhookServer
from tests.e2e.conftest import ACK_DEADLINE_SECONDS
from tests.helpers import eventually
from tests.staff.tokens import bearer, metadata


def placeable_report(seed: int) -> tuple[dict[str, str], str]:
    """A valid report on a demo household and that household's address."""
    for report in build_reports(20, seed):
        if report.expected_group:
            return report.body, report.body["address"]
    raise AssertionError("no placeable report")


def urls(platform: Platform) -> dict[str, str]:
    assert platform.endpoints is not None
    return {name: platform.endpoints.service_url(name) for name in ("intake", "escalation")}


async def post_report(platform: Platform, body: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=urls(platform)["intake"]) as client:
        response = await client.post("/v1/reports", json=body)
    assert response.status_code == 202, response.text
    report_id: str = response.json()["report_id"]
    return report_id


async def test_report_reaches_its_cadre_group_once_with_personal_data_masked(
    platform: Platform, webhook: WebhookServer, demo_directory: Directory
) -> None:
    body, address = placeable_report(seed=random.randrange(10**6))
    household = demo_directory.resolve(address)
    assert household is not None
    cadre = demo_directory.chain(household.id)[0]
    report_id = await post_report(platform, body)

    def to_cadre() -> list[ReceivedRequest]:
        # The household's micro-grid leader is told too, in their own group.
        return [r for r in webhook.for_report(report_id) if r.path == f"/hooks/{cadre.group.id}"]

    async def delivered() -> bool:
        return bool(to_cadre())

    await eventually(delivered, within=10)
    [request] = to_cadre()
    assert request.path == f"/hooks/{cadre.group.id}"
    assert request.body["group_id"] == cadre.group.id
    assert request.body["group_name"] == cadre.group.name
    assert request.body["kind"] == "NOTIFICATION_KIND_TASK_ASSIGNED"
    assert request.headers["Idempotency-Key"] == request.body["notification_id"]
    text = json.dumps(request.body, ensure_ascii=False)
    assert body["id_number"] not in text and body["phone"] not in text
    assert f"{'*' * 14}{body['id_number'][-4:]}" in text
    assert f"{body['phone'][:3]}****{body['phone'][-4:]}" in text

    # Acknowledged in time: the deadline passes and nothing more is sent about it.
    async with httpx.AsyncClient(
        base_url=urls(platform)["escalation"], headers=bearer(platform.data_dir)
    ) as client:
        task_id = request.body["task_id"]

        # Escalation consumes tasks.v1 beside notify's notifications.v1, so it may lag a little.
        async def stored() -> bool:
            return (await client.get(f"/v1/tasks/{task_id}")).status_code == 200

        await eventually(stored, within=10)
        ack = await client.post(f"/v1/tasks/{task_id}:acknowledge")
        assert ack.status_code == 200, ack.text
        assert ack.json()["state"] == "acknowledged"
        again = await client.post(f"/v1/tasks/{task_id}:acknowledge")
        assert again.status_code == 409
        assert again.json()["rule"] == "task.transition_refused"
        assert "已接收" in again.json()["detail"]
        await asyncio.sleep(ACK_DEADLINE_SECONDS + 1.5)
        task = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert task["escalations"] == []
    assert task["level"] == common_pb2.CHAIN_LEVEL_CADRE
    assert len(to_cadre()) == 1


async def test_unacknowledged_task_goes_to_the_next_level_after_its_deadline(
    platform: Platform, webhook: WebhookServer, demo_directory: Directory
) -> None:
    body, address = placeable_report(seed=random.randrange(10**6))
    household = demo_directory.resolve(address)
    assert household is not None
    liaison = demo_directory.chain(household.id)[1]
    report_id = await post_report(platform, body)

    def escalated() -> list[dict[str, object]]:
        return [
            r.body for r in webhook.for_report(report_id)
            if r.body["kind"] == "NOTIFICATION_KIND_ESCALATION"
        ]  # fmt: skip

    async def has_escalation() -> bool:
        return bool(escalated())

    await eventually(has_escalation, within=ACK_DEADLINE_SECONDS + 10)
    first = escalated()[0]
    assert first["group_id"] == liaison.group.id
    assert first["level"] == common_pb2.CHAIN_LEVEL_LIAISON
    async with httpx.AsyncClient(
        base_url=urls(platform)["escalation"], headers=bearer(platform.data_dir)
    ) as client:
        task = (await client.get(f"/v1/tasks/{first['task_id']}")).json()
    assert task["escalations"][0]["level"] == common_pb2.CHAIN_LEVEL_LIAISON
    assert task["escalations"][0]["group_id"] == liaison.group.id


async def _reports_on_topic(platform: Platform) -> int:
    assert platform.endpoints is not None
    bootstrap = platform.env["GRIDLINE_KAFKA_BOOTSTRAP"]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topics.REPORTS) or set()
        ends = await consumer.end_offsets([TopicPartition(topics.REPORTS, p) for p in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def test_bad_input_gets_a_4xx_naming_the_problem_and_reaches_no_topic(
    platform: Platform,
) -> None:
    body, _ = placeable_report(seed=1)
    before = await _reports_on_topic(platform)
    async with httpx.AsyncClient(base_url=urls(platform)["intake"], timeout=30) as client:
        json_type = {"Content-Type": "application/json"}
        malformed = await client.post(
            "/v1/reports", content=b'{"source": "self_report", ', headers=json_type
        )
        wrong_type = await client.post("/v1/reports", json={**body, "phone": 13812345678})
        missing = await client.post(
            "/v1/reports", json={k: v for k, v in body.items() if k not in ("phone", "address")}
        )
        huge = await client.post(
            "/v1/reports", content=b"{" + b" " * (10 * 1024 * 1024) + b"}",
            headers=json_type,
        )  # fmt: skip
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["rule"] == "json_invalid"
    assert wrong_type.status_code == 422
    [problem] = wrong_type.json()["errors"]
    assert problem == {
        "field": "phone", "rule": "string_type", "detail": "Input should be a valid string"
    }  # fmt: skip
    assert missing.status_code == 422
    assert {p["field"] for p in missing.json()["errors"]} == {"phone", "address"}
    assert huge.status_code == 413
    assert huge.json()["rule"] == "body.too_large" and "超过" in huge.json()["detail"]
    assert await _reports_on_topic(platform) == before


async def test_directory_answers_over_grpc_with_health_and_reflection(
    platform: Platform, demo_directory: Directory
) -> None:
    household = demo_directory.nodes["cm05-g02-b03-u1-201"]
    assert platform.endpoints is not None
    async with grpc.aio.insecure_channel(platform.endpoints.directory_grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(
            health_pb2.HealthCheckRequest(service="gridline.contracts.v1.Directory"), timeout=5
        )
        assert status.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [reply] = [r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=5)]
        names = {s.name for s in reply.list_services_response.service}
        assert "gridline.contracts.v1.Directory" in names

        directory = directory_pb2_grpc.DirectoryStub(channel)
        assert household.address is not None
        resolved = await directory.ResolveAddress(
            directory_pb2.ResolveAddressRequest(address=household.address), timeout=5
        )
        assert resolved.found and resolved.household.household_id == household.id
        assert resolved.household.community_id == "cm05"
        chain = await directory.GetChain(
            directory_pb2.GetChainRequest(node_id=household.id), timeout=5
        )
        expected = [link.group.id for link in demo_directory.chain(household.id)]
        assert [level.group_id for level in chain.levels] == expected
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await directory.GetChain(directory_pb2.GetChainRequest(node_id="nowhere"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_placement_and_task_are_read_and_acted_on_over_grpc(
    platform: Platform, webhook: WebhookServer
) -> None:
    body, _ = placeable_report(seed=random.randrange(10**6))
    report_id = await post_report(platform, body)
    assert platform.endpoints is not None
    async with (
        DirectoryClient(platform.endpoints.directory_grpc) as directory,
        TasksClient(platform.endpoints.tasks_grpc) as tasks,
    ):

        async def task_stored() -> bool:
            return bool(await tasks.tasks_of_report(report_id))

        await eventually(task_stored, within=10)
        placement = await directory.placement(report_id)
        [task] = await tasks.tasks_of_report(report_id)
        assert placement.task_id == task.task_id
        assert not placement.triage and placement.node_id
        assert task.state == "assigned" and task.HasField("deadline_at")
        # Acknowledging is a staff action: the call carries the person's token.
        async with grpc.aio.insecure_channel(platform.endpoints.tasks_grpc) as channel:
            acknowledge = functools.partial(
                tasks_pb2_grpc.TasksStub(channel).Acknowledge,
                tasks_pb2.AcknowledgeRequest(task_id=task.task_id),
                metadata=metadata(platform.data_dir),
                timeout=5,
            )
            acknowledged = await acknowledge()
            assert acknowledged.state == "acknowledged"
            assert not acknowledged.HasField("deadline_at")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await acknowledge()
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "acknowledged" in (refused.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await directory.placement("no-such-report")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
