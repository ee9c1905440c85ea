"""Staff identity on gRPC methods, and the table that tells staff methods from internal ones.

Every method of a Gridline gRPC service is one of two kinds:

- **staff** (`@staff_method`): an operator action. The call carries the staff member's token
  in the `authorization` metadata (`Bearer <token>`); without one, or with one that does not
  hold, it ends UNAUTHENTICATED; a role or node that does not allow it, PERMISSION_DENIED. The
  method receives the `Staff` as its third argument.
- **internal** (`@internal_method`): called by another Gridline service (intake and escalation
  asking the Directory, intake asking Tasks). No staff token is asked for; who may call is the
  transport's business (mutual TLS, network policies).

A servicer class is declared `@governed(descriptor)`: importing it fails when one of the
service's methods is neither, so a new method cannot slip in unguarded. `access_table` lists
the kinds by full method name (docs/security.md, the access-matrix test).

This is what a server interceptor would do, applied per servicer: the servers are built by
`gridline.rpc.RpcServer` for every service alike, and a method's kind belongs with its code.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Protocol, TypeAlias, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from gridline.rpc import abort
from gridline.staff.identity import Forbidden, NotSignedIn, Staff
from gridline.staff.tokens import KeysUnavailable, TokenVerifier

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
RequestT = TypeVar("RequestT")
ReplyT = TypeVar("ReplyT")
MethodT = TypeVar("MethodT", bound=Callable[..., Any])
ClassT = TypeVar("ClassT", bound=type)

_ACCESS = "__gridline_access__"
_BEARER = "bearer "


class Access(StrEnum):
    """Who may call a method."""

    STAFF = "staff"
    INTERNAL = "internal"


class StaffServicer(Protocol):
    """A servicer with staff methods holds the verifier of their tokens."""

    @property
    def staff_tokens(self) -> TokenVerifier:
        """The staff token verifier."""
        ...


ServicerT = TypeVar("ServicerT", bound=StaffServicer)


async def _signed_in(tokens: TokenVerifier, context: Context) -> Staff:
    metadata = dict(context.invocation_metadata() or ())
    value = metadata.get("authorization", "")
    if not isinstance(value, str) or not value.lower().startswith(_BEARER):
        await abort(
            context,
            grpc.StatusCode.UNAUTHENTICATED,
            "未登录：请以工作人员身份登录后再操作（调用须带 authorization: Bearer 登录凭证）",
        )
    try:
        return await tokens.staff(value[len(_BEARER) :].strip())
    except NotSignedIn as refused:
        await abort(context, grpc.StatusCode.UNAUTHENTICATED, str(refused))
    except KeysUnavailable as unavailable:
        await abort(context, grpc.StatusCode.UNAVAILABLE, str(unavailable))


def staff_method(
    method: Callable[[ServicerT, RequestT, Context, Staff], Awaitable[ReplyT]],
) -> Callable[[ServicerT, RequestT, Context], Awaitable[ReplyT]]:
    """Mark a method as an operator action: its caller's token is checked first, and a
    `Forbidden` it raises ends the call PERMISSION_DENIED."""

    @functools.wraps(method)
    async def guarded(self: ServicerT, request: RequestT, context: Context) -> ReplyT:
        staff = await _signed_in(self.staff_tokens, context)
        try:
            return await method(self, request, context, staff)
        except Forbidden as refused:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, str(refused))

    setattr(guarded, _ACCESS, Access.STAFF)
    return guarded


def internal_method(method: MethodT) -> MethodT:
    """Mark a method as called by other Gridline services only (no staff token)."""
    setattr(method, _ACCESS, Access.INTERNAL)
    return method


def access_table(servicer: type, service: ServiceDescriptor) -> dict[str, Access]:
    """Each method's kind by its full name (`/gridline.contracts.v1.Tasks/GetTask`); KeyError
    names a method that has none."""
    table = {}
    for method in service.methods:
        access = getattr(getattr(servicer, method.name, None), _ACCESS, None)
        if access is None:
            raise KeyError(method.name)
        table[f"/{service.full_name}/{method.name}"] = Access(access)
    return table


def governed(service: ServiceDescriptor) -> Callable[[ClassT], ClassT]:
    """Declare a servicer class of `service`: every method must be a staff or an internal one."""

    def check(servicer: ClassT) -> ClassT:
        try:
            access_table(servicer, service)
        except KeyError as missing:
            raise TypeError(
                f"{servicer.__name__}.{missing.args[0]} is neither @staff_method nor "
                "@internal_method: say who may call it"
            ) from None
        return servicer

    return check
