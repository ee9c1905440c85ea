"""Every gRPC method of an RpcServer is counted by status code and timed, streaming ones too."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from gridline.embedded import free_port
from gridline.rpc import RpcServer, channel
from gridline.rpc_metrics import split_method

HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


def calls(service: str, method: str, code: str) -> float:
    labels = {"service": service, "method": method, "code": code}
    return REGISTRY.get_sample_value("gridline_rpc_requests_total", labels) or 0.0


def timed(service: str, method: str) -> float:
    labels = {"service": service, "method": method}
    return REGISTRY.get_sample_value("gridline_rpc_request_duration_seconds_count", labels) or 0.0


def test_split_method() -> None:
    assert split_method("/gridline.contracts.v1.Tasks/Acknowledge") == (
        "gridline.contracts.v1.Tasks",
        "Acknowledge",
    )


async def test_calls_are_counted_by_code_and_timed() -> None:
    port = free_port()
    before = {
        "ok": calls(HEALTH, "Check", "OK"),
        "not_found": calls(HEALTH, "Check", "NOT_FOUND"),
        "timed": timed(HEALTH, "Check"),
        "reflection": calls(REFLECTION, "ServerReflectionInfo", "OK"),
    }
    async with (
        RpcServer("127.0.0.1", port, [], ["test.Service"]),
        channel(f"127.0.0.1:{port}") as chan,
    ):
        health = health_pb2_grpc.HealthStub(chan)
        await health.Check(health_pb2.HealthCheckRequest(service="test.Service"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await health.Check(health_pb2.HealthCheckRequest(service="nothing"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        reflection = reflection_pb2_grpc.ServerReflectionStub(chan)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = [r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=5)]
        assert len(replies) == 1
    assert calls(HEALTH, "Check", "OK") == before["ok"] + 1
    assert calls(HEALTH, "Check", "NOT_FOUND") == before["not_found"] + 1
    assert timed(HEALTH, "Check") == before["timed"] + 2
    assert calls(REFLECTION, "ServerReflectionInfo", "OK") == before["reflection"] + 1
