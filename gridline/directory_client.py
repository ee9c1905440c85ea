"""The client every service uses to ask assignment's Directory over gRPC."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from gridline.contracts.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from gridline.rpc import RpcClient
from gridline.staff.identity import Place


class DirectoryClient(RpcClient):
    """Typed calls to the Directory with a deadline and a few retries on transient errors.

    `target` names every assignment replica: in Kubernetes the headless Service,
    `dns:///assignment-grpc.<namespace>.svc.cluster.local:50051`. Calls go round robin over
    the replicas (`gridline.rpc.channel`), and a retry after one failed goes to the next.
    """

    @cached_property
    def _stub(self) -> directory_pb2_grpc.DirectoryStub:
        return directory_pb2_grpc.DirectoryStub(self._channel)

    async def chain(self, node_id: str) -> list[common_pb2.Responsible]:
        """The responsible levels above a household, grid or community, bottom first."""
        reply = await self._call(
            self._stub.GetChain, directory_pb2.GetChainRequest(node_id=node_id)
        )
        return list(reply.levels)

    async def place(self, node_id: str) -> Place:
        """Where a node sits: its township, community and grid (grpc NOT_FOUND for a node the
        Directory lacks)."""
        reply = await self._call(
            self._stub.GetChain, directory_pb2.GetChainRequest(node_id=node_id)
        )
        return _place(reply)

    async def household(self, household_id: str) -> Place:
        """Where a household sits (grpc NOT_FOUND for an id that is no household of the
        Directory's: a building or unit is refused too)."""
        reply = await self._call(
            self._stub.GetHousehold, directory_pb2.GetHouseholdRequest(household_id=household_id)
        )
        return _place(reply)

    async def placement(self, report_id: str) -> directory_pb2.Placement:
        """Where a report was placed (grpc NOT_FOUND while it is not)."""
        return await self._call(
            self._stub.GetPlacement, directory_pb2.GetPlacementRequest(report_id=report_id)
        )

    async def cadre_load(self) -> list[directory_pb2.CadreLoad]:
        """Every cadre with the grids they serve and their open tasks."""
        reply = await self._call(self._stub.ListCadreLoad, directory_pb2.ListCadreLoadRequest())
        return list(reply.cadres)

    async def grid_households(self) -> dict[str, int]:
        """Every grid of the county and the number of households in it."""
        reply = await self._call(
            self._stub.ListGridHouseholdCounts, directory_pb2.ListGridHouseholdCountsRequest()
        )
        return {grid.grid_id: grid.households for grid in reply.grids}

    async def search_households(
        self, under_node_id: str, text: str, limit: int = 0
    ) -> list[directory_pb2.Household]:
        """The households under a node whose address holds every word of `text`."""
        reply = await self._call(
            self._stub.SearchHouseholds,
            directory_pb2.SearchHouseholdsRequest(
                under_node_id=under_node_id, text=text, limit=limit
            ),
        )
        return list(reply.households)

    async def nodes(
        self, node_ids: Iterable[str] = (), *, under_node_id: str = "", kind: str = ""
    ) -> list[directory_pb2.NodeInfo]:
        """The nodes named (unknown ones left out), then those of `kind` under a node."""
        reply = await self._call(
            self._stub.ListNodes,
            directory_pb2.ListNodesRequest(
                node_ids=list(node_ids), under_node_id=under_node_id, kind=kind
            ),
        )
        return list(reply.nodes)

    async def persons(
        self,
        token: str,
        report_ids: Iterable[str],
        *,
        reveal: bool = False,
        purpose: str = "",
        within: float = 30.0,
    ) -> list[directory_pb2.Person]:
        """The register's persons of some reports for the staff member of `token` (one call,
        answered in batches, within `within` seconds; grpc PERMISSION_DENIED when they may not
        list or reveal them).

        Not retried: a call that revealed people is audited, and the caller asks again.
        """
        request = directory_pb2.ListPersonsRequest(
            report_ids=list(report_ids), reveal=reveal, purpose=purpose
        )
        metadata = (("authorization", f"Bearer {token}"),)
        persons: list[directory_pb2.Person] = []
        async for batch in self._stub.ListPersons(request, metadata=metadata, timeout=within):
            persons.extend(batch.persons)
        return persons


def _place(reply: directory_pb2.Chain | directory_pb2.Household) -> Place:
    """The township, community and grid a Directory answer names."""
    return Place(
        township_id=reply.township_id, community_id=reply.community_id, grid_id=reply.grid_id
    )
