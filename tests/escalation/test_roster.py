"""The zero-report roster read from a Directory over gRPC (a loopback stand-in for assignment)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest
from structlog.testing import capture_logs

from gridline.contracts.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from gridline.directory_client import DirectoryClient
from gridline.embedded import free_port
from gridline.rpc import RpcServer
from services.escalation.roster import DirectoryRoster
from tests.escalation.conftest import CHAIN, Clock


@dataclass
class Directory(directory_pb2_grpc.DirectoryServicer):
    """Two cadres over three grids, every grid under the same chain; counts the calls.

    Asked for household counts, it never answers.
    """

    calls: int = 0

    async def ListCadreLoad(
        self, request: directory_pb2.ListCadreLoadRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.CadreLoadList:
        self.calls += 1
        return directory_pb2.CadreLoadList(cadres=[
            directory_pb2.CadreLoad(person_id="c1", grid_ids=["grid-b", "grid-a"]),
            directory_pb2.CadreLoad(person_id="c2", grid_ids=["grid-b", "grid-c"]),
        ])  # fmt: skip

    async def GetChain(
        self, request: directory_pb2.GetChainRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Chain:
        return directory_pb2.Chain(node_id=request.node_id, levels=CHAIN[1:])

    async def ListNodes(
        self, request: directory_pb2.ListNodesRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.NodeList:
        # grid-c is not named (a grid the directory lost since): it keeps its id.
        known = {
            "grid-a": directory_pb2.NodeInfo(
                node_id="grid-a", kind="grid", name="三汇小区", parent_id="cm-north"
            ),
            "grid-b": directory_pb2.NodeInfo(
                node_id="grid-b", kind="grid", name="第二网格", parent_id="t-town"
            ),
            "cm-north": directory_pb2.NodeInfo(
                node_id="cm-north", kind="community", name="城北社区", parent_id="t-town"
            ),
            "t-town": directory_pb2.NodeInfo(node_id="t-town", kind="township", name="石洞镇"),
        }
        return directory_pb2.NodeList(nodes=[known[n] for n in request.node_ids if n in known])

    async def ListGridHouseholdCounts(
        self,
        request: directory_pb2.ListGridHouseholdCountsRequest,
        context: grpc.aio.ServicerContext,
    ) -> directory_pb2.GridHouseholdCounts:
        await asyncio.sleep(60)  # longer than any bound the tests give
        return directory_pb2.GridHouseholdCounts()


@pytest.fixture
async def directory() -> AsyncIterator[tuple[str, Directory]]:
    port, servicer = free_port(), Directory()
    server = RpcServer.serving(
        "127.0.0.1", port,
        directory_pb2_grpc.add_DirectoryServicer_to_server, servicer,
        directory_pb2.DESCRIPTOR.services_by_name["Directory"],
    )  # fmt: skip
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(grace=0.1)


async def test_every_served_grid_with_its_offices_read_again_after_the_refresh(
    directory: tuple[str, Directory], clock: Clock
) -> None:
    target, servicer = directory
    async with DirectoryClient(target) as client:
        roster = DirectoryRoster(client, refresh=timedelta(minutes=10), clock=clock)
        grids = await roster.grids()
        assert [g.grid_id for g in grids] == ["grid-a", "grid-b", "grid-c"]
        # Named as offices say them: the community before the grid, where it is one.
        assert [g.grid_name for g in grids] == ["城北社区三汇小区", "第二网格", "grid-c"]
        assert sorted(grids[0].offices) == [
            common_pb2.CHAIN_LEVEL_COMMUNITY,
            common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
            common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
        ]
        await roster.grids()
        assert servicer.calls == 1
        clock.advance(timedelta(minutes=10))
        await roster.grids()
        assert servicer.calls == 2


async def test_household_counts_not_given_within_the_bound_are_unknown_and_warned_of(
    directory: tuple[str, Directory],
) -> None:
    target, _ = directory
    async with DirectoryClient(target, timeout=30) as client:
        roster = DirectoryRoster(client, households_within=0.2)
        with capture_logs() as logs:
            assert await roster.households() is None
    assert [(e["event"], e["code"]) for e in logs] == [
        ("household counts unavailable, visit rate left unknown", "TIMEOUT")
    ]


async def test_a_roster_never_read_is_not_made_up_while_the_directory_is_unreachable() -> None:
    async with DirectoryClient(f"127.0.0.1:{free_port()}") as client:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await DirectoryRoster(client).grids()
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
