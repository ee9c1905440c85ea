"""Assignment's gRPC Directory service."""

from __future__ import annotations

import grpc

from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.timestamps import to_timestamp
from services.assignment import storage
from services.assignment.directory import Directory, Node, NodeKind
from services.assignment.placement import responsible


def _household(directory: Directory, node: Node) -> directory_pb2.Household:
    def up(kind: NodeKind) -> str:
        found = directory.ancestor(node.id, kind)
        return found.id if found else ""

    return directory_pb2.Household(
        household_id=node.id,
        address=node.address or "",
        unit_id=up(NodeKind.UNIT),
        building_id=up(NodeKind.BUILDING),
        grid_id=up(NodeKind.GRID),
        community_id=up(NodeKind.COMMUNITY),
        township_id=up(NodeKind.TOWNSHIP),
    )


class DirectoryServicer(directory_pb2_grpc.DirectoryServicer):
    """Answers from the directory loaded in memory."""

    def __init__(self, directory: Directory, db: Database) -> None:
        self._directory = directory
        self._db = db

    async def ResolveAddress(
        self, request: directory_pb2.ResolveAddressRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.ResolveAddressResponse:
        """Place an address on a household (exact match)."""
        node = self._directory.resolve(request.address)
        if node is None:
            return directory_pb2.ResolveAddressResponse(found=False, confidence=0.0)
        return directory_pb2.ResolveAddressResponse(
            found=True, household=_household(self._directory, node), confidence=1.0
        )

    async def GetChain(
        self, request: directory_pb2.GetChainRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Chain:
        """The chain of responsible people and groups above a node."""
        try:
            links = self._directory.chain(request.node_id)
        except KeyError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no node {request.node_id!r}")
        return directory_pb2.Chain(
            node_id=request.node_id, levels=[responsible(link) for link in links]
        )

    async def GetPlacement(
        self, request: directory_pb2.GetPlacementRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Placement:
        """Where a report was placed."""
        async with self._db.session() as session:
            placement = await storage.get_placement(session, request.report_id)
        if placement is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"report {request.report_id!r} not placed"
            )
        return directory_pb2.Placement(
            report_id=placement.report_id,
            task_id=placement.task_id,
            node_id=placement.node_id,
            triage=placement.triage,
            placed_at=to_timestamp(placement.placed_at),
        )
