"""Chains of responsible levels, looked up before any transaction opens.

The timers (deadlines, missed check-ins) need the chain above a task's node. The Directory is
asked outside the transaction that locks the due rows, once per distinct node, a few nodes at a
time, so that no row lock is held while a peer answers. A node whose lookup fails is left out
of the answer, named with its error: one bad node (say, one dropped from the directory) never
keeps the others' tasks from firing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import grpc

from gridline.contracts.v1 import common_pb2
from gridline.logging import get_logger

log = get_logger(__name__)

# The chain of a household, grid or community, bottom first (DirectoryClient.chain).
ChainLookup = Callable[[str], Awaitable[list[common_pb2.Responsible]]]
Chains = dict[str, list[common_pb2.Responsible]]

# Lookups in flight at once: enough to hide the round trips, few enough to spare the Directory.
_AT_ONCE = 16

# The Directory could not be reached in time: the node may well be fine, ask again later.
_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass
class Lookups:
    """The chains found, and the nodes whose lookup failed with its error."""

    chains: Chains = field(default_factory=dict)
    failed: dict[str, Exception] = field(default_factory=dict)


def unreachable(error: Exception) -> bool:
    """Whether a lookup failed only because the Directory could not be reached in time."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in _UNREACHABLE


def unknown_node(error: Exception) -> bool:
    """Whether a lookup failed because the Directory has no such node."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.NOT_FOUND


async def look_up(chain_of: ChainLookup, node_ids: Collection[str]) -> Lookups:
    """The chain of each node, one lookup per distinct node; failures are kept apart."""
    nodes = sorted(set(node_ids))
    found = Lookups()
    for first in range(0, len(nodes), _AT_ONCE):
        part = nodes[first : first + _AT_ONCE]
        answers = await asyncio.gather(*map(chain_of, part), return_exceptions=True)
        for node_id, answer in zip(part, answers, strict=True):
            if isinstance(answer, Exception):
                found.failed[node_id] = answer
            elif isinstance(answer, BaseException):
                raise answer  # cancellation and the like are no lookup failure
            else:
                found.chains[node_id] = answer
    return found


async def resolve(chain_of: ChainLookup, node_ids: Collection[str]) -> Chains:
    """The chain of each node that could be looked up; failures are left out, and logged in
    one line (a Directory that is down fails every node)."""
    found = await look_up(chain_of, node_ids)
    if found.failed:
        log.warning(
            "chain lookups failed",
            nodes=sorted(found.failed)[:10],
            failed=len(found.failed),
            errors=sorted({described(error) for error in found.failed.values()}),
        )
    return found.chains


def for_one_pass(chain_of: ChainLookup) -> ChainLookup:
    """`chain_of` remembering each node's chain, or its failure, for one pass of a watcher."""
    known: dict[str, list[common_pb2.Responsible] | Exception] = {}

    async def chain(node_id: str) -> list[common_pb2.Responsible]:
        if node_id not in known:
            try:
                known[node_id] = await chain_of(node_id)
            except Exception as error:
                known[node_id] = error
        answer = known[node_id]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return chain


def described(error: Exception) -> str:
    """A failed lookup in a log line: the gRPC code, else the exception's type."""
    if isinstance(error, grpc.aio.AioRpcError):
        return str(error.code().name)
    return type(error).__name__
