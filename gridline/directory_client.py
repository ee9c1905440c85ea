"""The client every service uses to ask assignment's Directory over gRPC."""

from __future__ import annotations

from gridline.contracts.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from gridline.rpc import call, channel


class DirectoryClient:
    """Typed calls to the Directory with a deadline and a few retries on transient errors."""

    def __init__(self, target: str, timeout: float = 2.0, attempts: int = 3) -> None:
        self._channel = channel(target)
        self._stub = directory_pb2_grpc.DirectoryStub(self._channel)
        self._timeout = timeout
        self._attempts = attempts

    async def __aenter__(self) -> DirectoryClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def chain(self, node_id: str) -> list[common_pb2.Responsible]:
        """The responsible levels above a household, grid or community, bottom first."""
        reply = await call(
            self._stub.GetChain,
            directory_pb2.GetChainRequest(node_id=node_id),
            deadline=self._timeout,
            attempts=self._attempts,
        )
        return list(reply.levels)

    async def placement(self, report_id: str) -> directory_pb2.Placement:
        """Where a report was placed (grpc NOT_FOUND while it is not)."""
        return await call(
            self._stub.GetPlacement,
            directory_pb2.GetPlacementRequest(report_id=report_id),
            deadline=self._timeout,
            attempts=self._attempts,
        )

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
