"""Chains of responsible levels, looked up before any transaction opens.

The timers (deadlines, missed check-ins) need the chain above a task's node. The Directory is
asked outside the transaction that locks the due rows, once per distinct node, a few nodes at a
time, so that no row lock is held while a peer answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

from gridline.contracts.v1 import common_pb2

# The chain of a household, grid or community, bottom first (DirectoryClient.chain).
ChainLookup = Callable[[str], Awaitable[list[common_pb2.Responsible]]]
Chains = dict[str, list[common_pb2.Responsible]]

# Lookups in flight at once: enough to hide the round trips, few enough to spare the Directory.
_AT_ONCE = 16


async def resolve(chain_of: ChainLookup, node_ids: Collection[str]) -> Chains:
    """The chain of each node, one lookup per distinct node."""
    nodes = sorted(set(node_ids))
    chains: Chains = {}
    for first in range(0, len(nodes), _AT_ONCE):
        part = nodes[first : first + _AT_ONCE]
        chains.update(zip(part, await asyncio.gather(*map(chain_of, part)), strict=True))
    return chains


def for_one_pass(chain_of: ChainLookup) -> ChainLookup:
    """`chain_of` remembering each node's chain, for one pass of a watcher."""
    known: Chains = {}

    async def chain(node_id: str) -> list[common_pb2.Responsible]:
        if node_id not in known:
            known[node_id] = await chain_of(node_id)
        return known[node_id]

    return chain
