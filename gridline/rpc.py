"""gRPC on asyncio: a server with health checking and reflection, and client channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, Self, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from gridline.rpc_metrics import RpcMetricsInterceptor

ReplyT = TypeVar("ReplyT")
ServicerT = TypeVar("ServicerT")

# Registers a servicer on a server, e.g. `add_DirectoryServicer_to_server` bound to its servicer.
Registration = Callable[[grpc.aio.Server], None]


class RpcServer:
    """A grpc.aio server serving the given services plus health and reflection."""

    def __init__(
        self,
        host: str,
        port: int,
        registrations: Sequence[Registration],
        service_names: Sequence[str],
    ) -> None:
        self.address = f"{host}:{port}"
        self._server = grpc.aio.server(interceptors=[RpcMetricsInterceptor()])
        for register in registrations:
            register(self._server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._service_names = list(service_names)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        self._server.add_insecure_port(self.address)

    @classmethod
    def serving(
        cls,
        host: str,
        port: int,
        register: Callable[[ServicerT, grpc.aio.Server], None],
        servicer: ServicerT,
        service: Any,
    ) -> RpcServer:
        """A server for one generated service.

        `register` is the generated `add_XServicer_to_server`, `service` the service's
        descriptor (`x_pb2.DESCRIPTOR.services_by_name["X"]`), whose name health and reflection
        report.
        """
        return cls(host, port, [lambda server: register(servicer, server)], [service.full_name])

    async def __aenter__(self) -> RpcServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start serving and report every service as serving."""
        await self._server.start()
        for name in ["", *self._service_names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 2.0) -> None:
        """Report not serving, then stop after letting calls in flight finish."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, details: str
) -> NoReturn:
    """End the call with a status: grpc's own `abort` raises, which its missing types don't say."""
    await context.abort(code, details)
    raise AssertionError("unreachable: grpc's abort raises")


def channel(target: str) -> grpc.aio.Channel:
    """A client channel to a gRPC server (plaintext inside the cluster network)."""
    return grpc.aio.insecure_channel(target)


_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _TRANSIENT


async def call(
    method: Callable[..., Awaitable[ReplyT]], request: object, *, deadline: float, attempts: int
) -> ReplyT:
    """A unary call with a deadline in seconds, retried while the server is unreachable."""
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.1, max=1),
        retry=retry_if_exception(_transient),
        reraise=True,
    ):
        with attempt:
            return await method(request, timeout=deadline)
    raise AssertionError("unreachable: tenacity reraises the last error")


class RpcClient:
    """A channel to one server; typed clients call through `_call` with a deadline and retries."""

    def __init__(self, target: str, timeout: float = 2.0, attempts: int = 3) -> None:
        self._channel = channel(target)
        self._timeout = timeout
        self._attempts = attempts

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _call(self, method: Callable[..., Awaitable[ReplyT]], request: object) -> ReplyT:
        return await call(method, request, deadline=self._timeout, attempts=self._attempts)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
