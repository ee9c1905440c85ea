"""Assignment's Directory over gRPC from this separate process, against the demo county."""

from __future__ import annotations

import grpc
import pytest

from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline_cli.platform import Platform
from services.assignment.directory import Directory
from services.assignment.grid import NodeKind

# Every twentieth household plus the first and last: about a thousand chains, each compared.
STRIDE = 20


async def test_every_sampled_household_has_its_chain_and_place_over_grpc(
    platform: Platform, demo_directory: Directory
) -> None:
    households = [n for n in demo_directory.nodes.values() if n.kind is NodeKind.HOUSEHOLD]
    sample = [*households[::STRIDE], households[-1]]
    assert platform.endpoints is not None
    async with grpc.aio.insecure_channel(platform.endpoints.directory_grpc) as channel:
        stub = directory_pb2_grpc.DirectoryStub(channel)
        for household in sample:
            chain = await stub.GetChain(
                directory_pb2.GetChainRequest(node_id=household.id), timeout=10
            )
            expected = demo_directory.chain(household.id)
            assert [(c.person_id, c.group_id) for c in chain.levels] == [
                (link.person.id, link.group.id) for link in expected
            ], household.id
            found = await stub.GetHousehold(
                directory_pb2.GetHouseholdRequest(household_id=household.id), timeout=10
            )
            assert found.address == household.address
            assert found.unit_id == household.parent_id
            assert found.micro_grid_id == household.micro_grid_id
            leader = demo_directory.micro_grid_leader(household.id)
            assert leader is not None and found.micro_grid_leader_id == leader.id
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetHousehold(
                directory_pb2.GetHouseholdRequest(household_id="cm01-g01"), timeout=10
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_grid_chains_resolution_candidates_and_cadre_load_over_grpc(
    platform: Platform, demo_directory: Directory
) -> None:
    assert platform.endpoints is not None
    async with grpc.aio.insecure_channel(platform.endpoints.directory_grpc) as channel:
        stub = directory_pb2_grpc.DirectoryStub(channel)
        grid_chain = await stub.GetChain(directory_pb2.GetChainRequest(node_id="cm02-g03"))
        assert [c.person_id for c in grid_chain.levels] == [
            link.person.id for link in demo_directory.chain("cm02-g03")
        ]
        assert grid_chain.levels[0].person_id == "p-cm02-g03"

        written = await stub.ResolveAddress(
            directory_pb2.ResolveAddressRequest(address="三匯小區三號樓二單元三零二"), timeout=10
        )
        assert written.found and written.household.household_id == "cm01-g01-b03-u2-302"
        assert 0 < written.confidence < 1

        unit = await stub.ResolveAddress(
            directory_pb2.ResolveAddressRequest(address="城北社区三汇小区3号楼2单元"), timeout=10
        )
        assert not unit.found and not unit.triage
        assert (unit.node_id, unit.node_kind) == ("cm01-g01-b03-u2", "unit")

        misspelt = await stub.ResolveAddress(
            directory_pb2.ResolveAddressRequest(address="城北社区三会小区3号楼2单元302室")
        )
        assert misspelt.triage and misspelt.node_id == "cm01" and misspelt.confidence == 0
        assert "cm01-g01" in {c.node_id for c in misspelt.candidates}
        assert all(c.label for c in misspelt.candidates)

        load = await stub.ListCadreLoad(directory_pb2.ListCadreLoadRequest(grid_id="cm02-g03"))
        expected = {p.id for p in demo_directory.grid_cadres("cm02-g03")}
        assert {c.person_id for c in load.cadres} == expected
        assert all("cm02-g03" in c.grid_ids for c in load.cadres)
        counts = [c.open_tasks for c in load.cadres]
        assert counts == sorted(counts)
        everyone = await stub.ListCadreLoad(directory_pb2.ListCadreLoadRequest())
        assert len(everyone.cadres) == len(
            {p.id for p in demo_directory.people.values() if p.role == "cadre"}
        )
