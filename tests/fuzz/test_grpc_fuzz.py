"""Every gRPC method of every service, called with fuzzed messages: no INTERNAL or UNKNOWN
status, and an answer within the deadline (issue 14).

The servers are the started apps' (the access matrix's, once for the module). Methods are
enumerated from the generated descriptors (`gridline/contracts/v1/*_pb2`), so a new method, or
a new service, is fuzzed too (a service no started app serves fails the test). A request is
built from its message descriptor: strings of any script, control and bidi characters, very
long ones and identifiers that exist in the county; integers and enum numbers at their
extremes and beyond the declared values; floats incl. NaN and infinities; nested messages and
repeated fields. Bytes that are no such message go too (at random, and a string field that
is no UTF-8): they must be refused INVALID_ARGUMENT, not end UNKNOWN. Each is sent without
credentials, with a token that does not hold, and with staff tokens of the county office, a
cadre and a liaison (so that handlers past the check are reached).

A status other than the four of NOT_AN_ANSWER is an answer: RESOURCE_EXHAUSTED included, which
a client gets for a NOT_FOUND whose detail echoes an identifier over 16 KiB (grpc's limit on
metadata), as the 70,000-character text makes.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

import gridline.contracts.v1 as contracts
from gridline.staff.roles import Role
from tests.fuzz.conftest import CALL_TIMEOUT_SECONDS, Known, OnLoop, fuzz_settings
from tests.staff.test_access_matrix import Ctx
from tests.staff.tokens import metadata

# Generated calls per method (17 methods today; a few ms each).
EXAMPLES = 40

# Which started app serves each contract service.
SERVED_BY = {
    "gridline.contracts.v1.Directory": "assignment",
    "gridline.contracts.v1.Tasks": "escalation",
    "gridline.contracts.v1.Notify": "notify",
}

# An answer is any status but these: a server error, a method not served, or no answer.
NOT_AN_ANSWER = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}

# Text that has broken parsers and database drivers before.
ODD_TEXT = [
    "",
    " ",
    "\0",
    "١٢",  # Arabic-Indic digits
    "²",  # a digit to str.isdigit, not to int
    "１２",  # full-width digits
    "\u202e\u200b\ufeff",  # bidi override, zero-width space, BOM
    "A小区1号楼1单元101室",
    "%s%n%x",
    "' OR 1=1 --",
    "../../etc/passwd",
    "9" * 5_000,
    "界" * 70_000,  # past 64 KiB of UTF-8
    "\U0010ffff",
]

INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
# Nested messages deeper than this are left unset (the contracts nest two levels today).
MAX_DEPTH = 4


def methods() -> Iterator[MethodDescriptor]:
    """Every method of every service the generated contract modules declare."""
    for module in pkgutil.iter_modules(contracts.__path__):
        if module.name.endswith("_pb2"):
            generated = importlib.import_module(f"{contracts.__name__}.{module.name}")
            for service in generated.DESCRIPTOR.services_by_name.values():
                yield from service.methods


def full_name(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def scalars(field: FieldDescriptor, known: Known) -> st.SearchStrategy[Any]:
    """Values of one (non-message) field."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        # Lone surrogates are no UTF-8: protobuf refuses them before anything is sent.
        text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
        return st.one_of(
            text, st.sampled_from(ODD_TEXT), st.sampled_from(known.for_name(field.name))
        )
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    low, high = INT_RANGES[kind]
    extremes = st.sampled_from([low, high, 0, -1 if low else 1])
    if kind == FieldDescriptor.TYPE_ENUM:
        declared = st.sampled_from([value.number for value in field.enum_type.values])
        return st.one_of(declared, extremes, st.integers(low, high))
    return st.one_of(extremes, st.integers(low, high))


def values(field: FieldDescriptor, known: Known, depth: int) -> st.SearchStrategy[Any]:
    """Values of one field: a list for a repeated one, a dict for a map."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = (field.message_type.fields_by_name[n] for n in ("key", "value"))
        return st.dictionaries(scalars(key, known), values(value, known, depth + 1), max_size=3)
    one = (
        messages(field.message_type, known, depth + 1)
        if field.type == FieldDescriptor.TYPE_MESSAGE
        else scalars(field, known)
    )
    if field.is_repeated:
        return st.lists(one, max_size=4)
    return one


def messages(descriptor: Descriptor, known: Known, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`, each field set or left unset."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth > MAX_DEPTH:
        return st.just(cls())
    fields = {field.name: values(field, known, depth) for field in descriptor.fields}
    return st.fixed_dictionaries({}, optional=fields).map(lambda set_: cls(**set_))


def varint(value: int) -> bytes:
    """`value` as protobuf's base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def corrupted(descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    """Bytes that are no message of `descriptor` (or are one by chance): bytes at random, and
    a string field holding bytes that are no UTF-8 (what a client of another language may
    send; Python's protobuf refuses to build it)."""
    numbers = [f.number for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]
    junk = st.binary(min_size=1, max_size=64)
    if not numbers:
        return junk
    not_utf8 = st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
    field = st.sampled_from(numbers).map(lambda number: varint(number << 3 | 2))
    bad_text = st.tuples(field, not_utf8).map(lambda kv: kv[0] + varint(len(kv[1])) + kv[1])
    return st.one_of(junk, bad_text)


def callers(ctx: Ctx) -> list[tuple[tuple[str, str], ...]]:
    """The metadata calls are sent with: none, a token that does not hold, staff tokens."""
    staff = [(Role.COUNTY_OFFICE, "c"), (Role.CADRE, "gA"), (Role.LIAISON, "gA")]
    return [
        (),
        (("authorization", "Bearer not-a-token"),),
        *(metadata(ctx.data_dir, *who) for who in staff),
    ]


def test_every_contract_service_is_served() -> None:
    assert {method.containing_service.full_name for method in methods()} == set(SERVED_BY)


@pytest.mark.parametrize("method", list(methods()), ids=full_name)
async def test_fuzzed_messages_get_an_answer(
    ctx: Ctx, known: Known, on_loop: OnLoop, method: MethodDescriptor
) -> None:
    channel = ctx.channels[SERVED_BY[method.containing_service.full_name]]
    reply = message_factory.GetMessageClass(method.output_type)
    # Requests go as bytes, so that bytes no Python message would serialize to can go too.
    call = channel.unary_unary(full_name(method), response_deserializer=reply.FromString)

    async def answer(request: bytes, sent_with: tuple[tuple[str, str], ...]) -> None:
        try:
            await call(request, metadata=sent_with, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            assert code not in NOT_AN_ANSWER, (code, error.details(), request[:200])

    encoded = messages(method.input_type, known).map(lambda message: message.SerializeToString())

    @fuzz_settings(EXAMPLES)
    @given(
        request=st.one_of(encoded, corrupted(method.input_type)),
        sent_with=st.sampled_from(callers(ctx)),
    )
    def fuzz(request: bytes, sent_with: tuple[tuple[str, str], ...]) -> None:
        # The thread's own bound is a little longer than the call's deadline, which answers
        # DEADLINE_EXCEEDED first when the server is slow but alive.
        on_loop.run(answer(request, sent_with), CALL_TIMEOUT_SECONDS + 5)

    await asyncio.to_thread(fuzz)
