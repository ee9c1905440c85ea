"""gRPC between the services over mutual TLS, with certificates made here: a server takes only
clients with a certificate of its CA, and of those only the ones it names; a client takes only a
server the CA vouches for under the name it dialled; reflection only when enabled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from fastapi import FastAPI
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pydantic import ValidationError

from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.rpc import RpcServer, TlsIdentity, channel
from gridline.service import ServiceRuntime
from gridline.settings import Settings
from tests.security.certs import Authority

DIRECTORY = directory_pb2.DESCRIPTOR.services_by_name["Directory"]


class _NoPlacements(directory_pb2_grpc.DirectoryServicer):
    async def GetPlacement(
        self, request: directory_pb2.GetPlacementRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Placement:
        await context.abort(grpc.StatusCode.NOT_FOUND, f"report {request.report_id!r} not placed")
        raise AssertionError("abort raises")


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority()


async def _check(target: str, tls: TlsIdentity | None) -> grpc.StatusCode:
    """The status of a health check of the server at `target`, as the client sees it."""
    async with channel(target, tls) as chan:
        try:
            await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def directory(ca: Authority) -> AsyncIterator[str]:
    """The Directory under mutual TLS as assignment, taking intake alone; its target."""
    port = free_port()
    server = RpcServer.serving(
        "127.0.0.1",
        port,
        directory_pb2_grpc.add_DirectoryServicer_to_server,
        _NoPlacements(),
        DIRECTORY,
        tls=ca.identity("assignment"),
        clients=["intake"],
        reflection=False,
    )
    async with server:
        yield f"127.0.0.1:{port}"


async def test_only_the_named_peers_with_a_certificate_of_the_ca_get_an_answer(
    ca: Authority, directory: str
) -> None:
    assert await _check(directory, ca.identity("intake")) == grpc.StatusCode.OK
    # Known to the CA, but not among the Directory's clients.
    assert await _check(directory, ca.identity("escalation")) == grpc.StatusCode.PERMISSION_DENIED
    # Named intake by another CA, no certificate at all, or no TLS: no connection.
    assert await _check(directory, Authority().identity("intake")) == grpc.StatusCode.UNAVAILABLE
    anonymous = grpc.ssl_channel_credentials(root_certificates=ca.pem)
    async with grpc.aio.secure_channel(directory, anonymous) as chan:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await _check(directory, None) == grpc.StatusCode.UNAVAILABLE


async def test_the_typed_client_calls_over_mutual_tls(ca: Authority, directory: str) -> None:
    async with DirectoryClient(directory, attempts=1, tls=ca.identity("intake")) as client:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await client.placement("r-1")
    # The servicer's own answer: the call went through TLS and the peer check.
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_client_refuses_a_server_not_vouched_for_under_the_name_it_dialled(
    ca: Authority,
) -> None:
    for server_identity, dialled in (
        (Authority().identity("assignment"), "127.0.0.1"),  # another CA's
        (ca.identity("assignment"), "localhost"),  # the CA's, but for other names
    ):
        # A server taking any client: only the client's own check can refuse.
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        credentials = grpc.ssl_server_credentials(
            [(server_identity.key, server_identity.certificate)]
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        try:
            status = await _check(f"{dialled}:{port}", ca.identity("intake"))
            assert status == grpc.StatusCode.UNAVAILABLE, dialled
        finally:
            await server.stop(0)


async def test_reflection_only_when_enabled(ca: Authority) -> None:
    for enabled in (True, False):
        port = free_port()
        async with (
            RpcServer("127.0.0.1", port, [], ["test.Service"], reflection=enabled),
            channel(f"127.0.0.1:{port}") as chan,
        ):
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            stub = reflection_pb2_grpc.ServerReflectionStub(chan)
            if enabled:
                replies = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=3)]
                listed = {s.name for s in replies[0].list_services_response.service}
                assert "test.Service" in listed
            else:
                with pytest.raises(grpc.aio.AioRpcError) as off:
                    [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=3)]
                assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_callers_are_named_only_under_tls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only under mutual TLS"):
        RpcServer("127.0.0.1", free_port(), [], [], clients=["intake"])
    with pytest.raises(ValidationError, match="name callers only under mutual TLS"):
        Settings(directory_grpc_clients="intake")
    with pytest.raises(ValidationError, match="are set together"):
        Settings(grpc_tls_cert_file=tmp_path / "tls.crt")


async def test_a_service_serves_as_its_settings_say(ca: Authority, tmp_path: Path) -> None:
    """ServiceRuntime.serve: the staff address, the identity files, the callers of the
    service's server and reflection, all from the settings."""
    cert, key, ca_file = ca.files("assignment", tmp_path / "assignment")
    port = free_port()
    settings = Settings(
        host="192.0.2.1",  # not this machine: the server must bind GRIDLINE_STAFF_HOST instead
        staff_host="127.0.0.1",
        grpc_tls_cert_file=cert,
        grpc_tls_key_file=key,
        grpc_tls_ca_file=ca_file,
        directory_grpc_clients="escalation",
        env="production",
    )
    parts: Any = SimpleNamespace(ping=None, alive=None, producer=SimpleNamespace(is_connected=None))
    async with AsyncExitStack() as stack:
        runtime = ServiceRuntime(FastAPI(), settings, "assignment", parts, parts, stack)
        await runtime.serve(
            port, directory_pb2_grpc.add_DirectoryServicer_to_server, _NoPlacements(), DIRECTORY
        )
        target = f"127.0.0.1:{port}"
        assert await _check(target, ca.identity("escalation")) == grpc.StatusCode.OK
        assert await _check(target, ca.identity("intake")) == grpc.StatusCode.PERMISSION_DENIED
        async with channel(target, ca.identity("escalation")) as chan:
            stub = reflection_pb2_grpc.ServerReflectionStub(chan)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            with pytest.raises(grpc.aio.AioRpcError) as off:
                [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=3)]
            # Production turns reflection off unless GRIDLINE_GRPC_REFLECTION says otherwise.
            assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED
