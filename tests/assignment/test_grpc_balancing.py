"""Calls to the Directory spread over every assignment replica, not pinned to one.

Two real Directory servers on loopback stand for two assignment pods. In Kubernetes the
callers' target is a headless Service's DNS name, which resolves to every ready pod; here the
same round robin is given the addresses by a static `ipv4:` list, or by `dns:///localhost`,
which resolves to both 127.0.0.1 and ::1. Each replica counts the calls it answers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import grpc
import pytest

from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.rpc import MAX_CONNECTION_AGE_SECONDS, RpcServer, TlsIdentity
from gridline.settings import Settings
from services.assignment import storage
from services.assignment.assignee import CadreLoad
from services.assignment.directory import Directory
from services.assignment.following import Current
from services.assignment.grid import Node, NodeKind
from services.assignment.servicer import DirectoryServicer
from tests.security.certs import Authority

# A county of one grid with two households: what the replicas answer does not matter here,
# only which of them answers.
NODES = [
    Node("c", NodeKind.COUNTY, "县", None),
    Node("t", NodeKind.TOWNSHIP, "镇", "c"),
    Node("cm", NodeKind.COMMUNITY, "社区", "t"),
    Node("g1", NodeKind.GRID, "一网格", "cm"),
    Node("b1", NodeKind.BUILDING, "1号楼", "g1"),
    Node("u1", NodeKind.UNIT, "1单元", "b1"),
    Node("h1", NodeKind.HOUSEHOLD, "101室", "u1", address="1号楼1单元101室"),
    Node("h2", NodeKind.HOUSEHOLD, "102室", "u1", address="1号楼1单元102室"),
]
EXPECTED = {"g1": 2}


class CountingServicer(DirectoryServicer):
    """The real Directory servicer, counting the household-count calls it answers and noting
    the client connections (peer addresses) they came on."""

    def __init__(self, current: Current, db: Database, load: CadreLoad) -> None:
        super().__init__(current, db, load)
        self.calls = 0
        self.peers: set[str] = set()

    async def ListGridHouseholdCounts(
        self,
        request: directory_pb2.ListGridHouseholdCountsRequest,
        context: grpc.aio.ServicerContext,
    ) -> directory_pb2.GridHouseholdCounts:
        """As the real one, counted."""
        self.calls += 1
        self.peers.add(context.peer())
        return await super().ListGridHouseholdCounts(request, context)


@asynccontextmanager
async def replica(
    data_dir: Path,
    address: str,
    *,
    tls: TlsIdentity | None = None,
    clients: tuple[str, ...] = (),
    max_connection_age: float = MAX_CONNECTION_AGE_SECONDS,
) -> AsyncIterator[tuple[CountingServicer, RpcServer]]:
    """One assignment replica's Directory server on `address` (host:port), with a database of
    its own under `data_dir`, until the context closes; yields its servicer and server."""
    host, _, port = address.rpartition(":")
    async with Database(Settings(data_dir=data_dir), "assignment", storage.TABLES) as db:
        servicer = CountingServicer(Current(Directory(NODES, [], [])), db, CadreLoad())
        server = RpcServer.serving(
            host,
            int(port),
            directory_pb2_grpc.add_DirectoryServicer_to_server,
            servicer,
            directory_pb2.DESCRIPTOR.services_by_name["Directory"],
            tls=tls,
            clients=clients,
            max_connection_age=max_connection_age,
        )
        async with server:
            yield servicer, server


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_calls_go_round_robin_over_two_replicas_and_on_to_the_one_left(
    tmp_path: Path,
) -> None:
    first, second = free_port(), free_port()
    async with AsyncExitStack() as stack:
        one, one_server = await stack.enter_async_context(
            replica(tmp_path / "one", f"127.0.0.1:{first}")
        )
        two, _ = await stack.enter_async_context(replica(tmp_path / "two", f"127.0.0.1:{second}"))
        client = await stack.enter_async_context(
            DirectoryClient(f"ipv4:127.0.0.1:{first},127.0.0.1:{second}", timeout=2.0)
        )

        for _ in range(20):
            assert await client.grid_households() == EXPECTED
        # pick_first (grpc's default) would have sent all 20 down one connection.
        assert one.calls > 0 and two.calls > 0, (one.calls, two.calls)
        assert one.calls + two.calls == 20

        # Both connected, as each has answered: from here they take turns exactly.
        before = (one.calls, two.calls)
        for _ in range(10):
            await client.grid_households()
        assert (one.calls - before[0], two.calls - before[1]) == (5, 5)

        # A replica goes away (scaled down, rolled): every call still succeeds, on the other.
        await one_server.stop(grace=0.5)
        before = (one.calls, two.calls)
        for _ in range(10):
            assert await client.grid_households() == EXPECTED
        assert (one.calls - before[0], two.calls - before[1]) == (0, 10)


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback to put a second replica on")
async def test_one_dns_name_of_two_replicas_is_balanced_under_mutual_tls(tmp_path: Path) -> None:
    # As in a cluster: one name, one port, one address per replica, and each replica's
    # certificate names what the client dialled (as grpc-tls.yaml names the headless Service).
    ca = Authority()
    port = free_port()
    servicers = []
    async with AsyncExitStack() as stack:
        for n, host in enumerate(("127.0.0.1", "[::1]")):
            address, tls = f"{host}:{port}", ca.identity("localhost")
            served = replica(tmp_path / str(n), address, tls=tls, clients=("intake",))
            servicer, _ = await stack.enter_async_context(served)
            servicers.append(servicer)
        client = await stack.enter_async_context(
            DirectoryClient(f"dns:///localhost:{port}", tls=ca.identity("intake"))
        )
        for _ in range(20):
            assert await client.grid_households() == EXPECTED
    assert all(servicer.calls > 0 for servicer in servicers), [s.calls for s in servicers]
    assert sum(servicer.calls for servicer in servicers) == 20


async def test_callers_connect_again_once_a_connection_reaches_its_maximum_age(
    tmp_path: Path,
) -> None:
    # A new connection is when a caller resolves the name again and so finds the replicas
    # added since: a server ends each connection at its age, and no call fails for it.
    port = free_port()
    async with (
        replica(tmp_path, f"127.0.0.1:{port}", max_connection_age=0.3) as (servicer, _),
        DirectoryClient(f"127.0.0.1:{port}", attempts=1) as client,
    ):
        for _ in range(15):
            assert await client.grid_households() == EXPECTED
            await asyncio.sleep(0.1)
    assert servicer.calls == 15
    assert len(servicer.peers) >= 2, servicer.peers
