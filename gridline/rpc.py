"""gRPC on asyncio: a server with health checking and reflection, and client channels.

With a TLS identity (`TlsIdentity`: this service's certificate and key and the CA of every
peer) servers and clients speak mutual TLS: a server refuses clients without a certificate of
the CA and may restrict callers to named peers; a client checks that the server's certificate
is the CA's for the name it dialled. Without one, they speak plaintext (development).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Self, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection as _reflection
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from gridline.rpc_metrics import RpcMetricsInterceptor
from gridline.settings import Settings

ReplyT = TypeVar("ReplyT")
ServicerT = TypeVar("ServicerT")

# Registers a servicer on a server, e.g. `add_DirectoryServicer_to_server` bound to its servicer.
Registration = Callable[[grpc.aio.Server], None]

# A server ends each connection after this long (grpc adds ±10 % so that callers do not all
# come back at once): the caller connects again and resolves the name again on the way, which
# is how the callers of a headless Service learn of replicas added since they connected (a
# removed one they learn of at once, from the failed connection). See `channel`.
MAX_CONNECTION_AGE_SECONDS = 60.0
# Calls in flight on an ended connection get this long to finish: more than any call's deadline.
MAX_CONNECTION_AGE_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class TlsIdentity:
    """A service's gRPC identity: its certificate chain and key, and the CA its peers' chain to."""

    certificate: bytes
    key: bytes
    ca: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> TlsIdentity | None:
        """The identity in the GRIDLINE_GRPC_TLS_* files; None when they are not set."""
        cert, key, ca = (
            settings.grpc_tls_cert_file,
            settings.grpc_tls_key_file,
            settings.grpc_tls_ca_file,
        )
        if cert is None or key is None or ca is None:
            return None
        return cls(cert.read_bytes(), key.read_bytes(), ca.read_bytes())

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials of a server that requires a client certificate of the CA."""
        return grpc.ssl_server_credentials(
            [(self.key, self.certificate)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials of a client presenting this identity and trusting only the CA."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.certificate
        )


class RpcServer:
    """A grpc.aio server serving the given services plus health and, if asked, reflection.

    With `tls` it serves mutual TLS only; `clients` then names the peers (certificate DNS
    names) that may call it, every other one is refused with PERMISSION_DENIED (empty: any
    certificate of the CA). It ends each connection after `max_connection_age` seconds, so that
    callers balancing over replicas pick up new ones (MAX_CONNECTION_AGE_SECONDS).
    """

    def __init__(
        self,
        host: str,
        port: int,
        registrations: Sequence[Registration],
        service_names: Sequence[str],
        *,
        tls: TlsIdentity | None = None,
        clients: Collection[str] = (),
        reflection: bool = True,
        max_connection_age: float = MAX_CONNECTION_AGE_SECONDS,
    ) -> None:
        if clients and tls is None:
            raise ValueError("callers can be restricted to named peers only under mutual TLS")
        self.address = f"{host}:{port}"
        interceptors: list[grpc.aio.ServerInterceptor] = [RpcMetricsInterceptor()]
        if clients:
            # After the metrics one, so that refused calls are counted too.
            interceptors.append(PeerCheck(clients))
        options = [
            ("grpc.max_connection_age_ms", round(max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", round(MAX_CONNECTION_AGE_GRACE_SECONDS * 1000)),
        ]
        self._server = grpc.aio.server(interceptors=interceptors, options=options)
        for register in registrations:
            register(self._server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._service_names = list(service_names)
        if reflection:
            _reflection.enable_server_reflection(
                [*self._service_names, health.SERVICE_NAME, _reflection.SERVICE_NAME],
                self._server,
            )
        if tls is None:
            self._server.add_insecure_port(self.address)
        else:
            self._server.add_secure_port(self.address, tls.server_credentials())

    @classmethod
    def serving(
        cls,
        host: str,
        port: int,
        register: Callable[[ServicerT, grpc.aio.Server], None],
        servicer: ServicerT,
        service: Any,
        *,
        tls: TlsIdentity | None = None,
        clients: Collection[str] = (),
        reflection: bool = True,
        max_connection_age: float = MAX_CONNECTION_AGE_SECONDS,
    ) -> RpcServer:
        """A server for one generated service.

        `register` is the generated `add_XServicer_to_server`, `service` the service's
        descriptor (`x_pb2.DESCRIPTOR.services_by_name["X"]`), whose name health and reflection
        report; `tls`, `clients`, `reflection` and `max_connection_age` as for the constructor.
        """
        return cls(
            host,
            port,
            [lambda server: register(servicer, server)],
            [service.full_name],
            tls=tls,
            clients=clients,
            reflection=reflection,
            max_connection_age=max_connection_age,
        )

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


# Status details travel in metadata, which grpc bounds (8 KiB by default) for the whole trailer.
_DETAILS_CHARACTERS = 1_000


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, details: str
) -> NoReturn:
    """End the call with a status: grpc's own `abort` raises, which its missing types don't say.

    The details go in a trailer: cut so that one quoting a huge request still fits grpc's limit.
    """
    await context.abort(code, details[:_DETAILS_CHARACTERS])
    raise AssertionError("unreachable: grpc's abort raises")


class PeerCheck(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Refuses every call whose peer's certificate names none of `allowed` (PERMISSION_DENIED).

    A certificate's identities are its DNS names (or its common name without any), as grpc
    reports them; health and reflection are refused alike, so a stranger learns nothing.
    """

    def __init__(self, allowed: Collection[str]) -> None:
        self._allowed = frozenset(allowed)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """The method's handler, checking the peer before its behaviour runs."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._guard(handler.unary_unary), **codec)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(self._guard(handler.stream_unary), **codec)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._guard(handler.unary_stream), **codec)
        return grpc.stream_stream_rpc_method_handler(self._guard(handler.stream_stream), **codec)

    def _guard(self, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        # A streaming method either yields its replies or writes them through its context;
        # grpc tells the two apart by the kind of function, so the guard keeps that kind.
        if inspect.isasyncgenfunction(behavior):

            async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
                await self._admit(context)
                async for reply in behavior(request, context):
                    yield reply

            return streaming

        async def unary(request: Any, context: Any) -> Any:
            await self._admit(context)
            return await behavior(request, context)

        return unary

    async def _admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        identities = {name.decode() for name in context.peer_identities() or ()}
        if not identities & self._allowed:
            named = ", ".join(sorted(identities)) or "no certificate"
            await abort(
                context, grpc.StatusCode.PERMISSION_DENIED, f"{named} may not call this service"
            )


# Client-side load balancing. grpc's default policy, pick_first, sends every call of a channel
# down one connection, so behind a ClusterIP Service each caller pins one replica however many
# there are. round_robin instead connects to every address the name resolves to and spreads
# the calls over those that are up; given a headless Service (`clusterIP: None`) as
# `dns:///name:port`, the addresses are the ready pods. A pod that goes away fails its
# connection, which makes the channel resolve the name again; `RpcServer` ends connections at
# MAX_CONNECTION_AGE_SECONDS, so that callers also resolve again, and find pods added since,
# while no call fails. docs/operations.md, "gRPC between the services".
_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
# grpc waits 30 s between resolutions by default: a pod replaced in a rollout would be missed
# for that long. A few seconds keeps up with rollouts at a handful of DNS queries a minute.
DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS = 5_000
CHANNEL_OPTIONS: tuple[tuple[str, str | int], ...] = (
    ("grpc.service_config", _SERVICE_CONFIG),
    # The policy is ours: a DNS TXT record must not choose another.
    ("grpc.service_config_disable_resolution", 1),
    ("grpc.dns_min_time_between_resolutions_ms", DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS),
)


def channel(target: str, tls: TlsIdentity | None = None) -> grpc.aio.Channel:
    """A client channel to a gRPC server: mutual TLS with `tls`, plaintext without.

    `target` is any grpc name: `host:port` or `dns:///host:port` (every address of the name, as
    a headless Service gives its pods) or `ipv4:addr:port,addr:port` (fixed addresses); calls
    go round robin over the addresses that answer (CHANNEL_OPTIONS). Under TLS the servers'
    certificate must carry the dialled host name.
    """
    if tls is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(target, tls.channel_credentials(), options=CHANNEL_OPTIONS)


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
    """A channel to one server; typed clients call through `_call` with a deadline and retries.

    With `tls` the channel is mutual TLS (`TlsIdentity`).
    """

    def __init__(
        self,
        target: str,
        timeout: float = 2.0,
        attempts: int = 3,
        *,
        tls: TlsIdentity | None = None,
    ) -> None:
        self._channel = channel(target, tls)
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
