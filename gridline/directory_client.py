"""The client every service uses to ask assignment's Directory over gRPC."""

from __future__ import annotations

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from gridline.contracts.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from gridline.rpc import channel

_RETRIED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _RETRIED


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
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.1, max=1),
            retry=retry_if_exception(_transient),
            reraise=True,
        ):
            with attempt:
                reply = await self._stub.GetChain(
                    directory_pb2.GetChainRequest(node_id=node_id), timeout=self._timeout
                )
        return list(reply.levels)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
