"""Request rate, errors and duration of every gRPC method a server serves."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from gridline.metrics import RPC_REQUEST_SECONDS, RPC_REQUESTS

# Each status code's name, by the code and by its number (a servicer may set either).
_NAMES: dict[object, str] = {
    key: code.name for code in grpc.StatusCode for key in (code, code.value[0])
}


def split_method(full_method: str) -> tuple[str, str]:
    """`/pkg.Service/Method` as ("pkg.Service", "Method")."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


def status_name(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    """The status code name a call ended with, as the client sees it."""
    name = _NAMES.get(context.code())
    if name is not None:
        return name
    if isinstance(error, asyncio.CancelledError):
        return _NAMES[grpc.StatusCode.CANCELLED]
    # An exception escaping the servicer without a code set reaches the client as UNKNOWN.
    return "OK" if error is None else _NAMES[grpc.StatusCode.UNKNOWN]


class _Measured:
    """Counts and times one method's calls."""

    def __init__(self, full_method: str) -> None:
        self.service, self.method = split_method(full_method)

    def record(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        started: float,
        error: BaseException | None,
    ) -> None:
        RPC_REQUESTS.labels(self.service, self.method, status_name(context, error)).inc()
        RPC_REQUEST_SECONDS.labels(self.service, self.method).observe(time.perf_counter() - started)

    def unary(
        self, behavior: Callable[[Any, Any], Awaitable[Any]]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        async def measured(request: Any, context: Any) -> Any:
            started, error = time.perf_counter(), None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self.record(context, started, error)

        return measured

    def streaming(
        self, behavior: Callable[[Any, Any], AsyncIterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def measured(request: Any, context: Any) -> AsyncIterator[Any]:
            started, error = time.perf_counter(), None
            try:
                async for reply in behavior(request, context):
                    yield reply
            except BaseException as exc:
                error = exc
                raise
            finally:
                self.record(context, started, error)

        return measured

    def wrap_stream(self, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        # A streaming method either yields its replies or writes them through its context
        # (health's Watch); grpc tells the two apart by the kind of function, so keep it.
        if inspect.isasyncgenfunction(behavior):
            return self.streaming(behavior)
        return self.unary(behavior)


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Counts calls by service, method and status code and times them, on every method."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler with its behaviour wrapped; unknown methods pass untouched."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        measured = _Measured(handler_call_details.method)
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(measured.unary(handler.unary_unary), **codec)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                measured.unary(handler.stream_unary), **codec
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                measured.wrap_stream(handler.unary_stream), **codec
            )
        return grpc.stream_stream_rpc_method_handler(
            measured.wrap_stream(handler.stream_stream), **codec
        )
