"""Request rate, errors and duration of every gRPC method a server serves; and a request whose
bytes are no message of the method's type refused with INVALID_ARGUMENT (and counted), where
grpc would end it UNKNOWN with the decoder's exception."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

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


class _Undecodable:
    """Stands for a request that could not be decoded: the measured behaviour refuses it."""

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def _decoding(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, giving an `_Undecodable` instead of raising on bytes it cannot decode.

    grpc decodes the request after the interceptors, before the behaviour, and ends a call
    whose decoder raised UNKNOWN, as if the server had failed; it is the caller's mistake."""
    if deserializer is None:
        return None

    def decode(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except DecodeError as error:
            return _Undecodable(error)

    return decode


async def _refuse_undecodable(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    if isinstance(request, _Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"请求消息无法解码：{request.error}")


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
                await _refuse_undecodable(request, context)
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
                await _refuse_undecodable(request, context)
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
    """Counts calls by service, method and status code and times them, on every method; refuses
    an undecodable request INVALID_ARGUMENT (see `_decoding`)."""

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
        # Only where one request is decoded before the behaviour: a streamed request's
        # messages are decoded as the behaviour reads them.
        decoding = {**codec, "request_deserializer": _decoding(handler.request_deserializer)}
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                measured.unary(handler.unary_unary), **decoding
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                measured.unary(handler.stream_unary), **codec
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                measured.wrap_stream(handler.unary_stream), **decoding
            )
        return grpc.stream_stream_rpc_method_handler(
            measured.wrap_stream(handler.stream_stream), **codec
        )
