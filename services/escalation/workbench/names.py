"""Node names for the workbench, asked of the Directory and kept a while: pages show names,
never ids, and the grid changes far more slowly than pages are opened."""

from __future__ import annotations

import time
from collections.abc import Iterable

import grpc

from gridline.directory_client import DirectoryClient

# How long a name is trusted before it is asked again.
KEEP_SECONDS = 600.0


class NodeNames:
    """Names of grid nodes by id (`known` for what was asked before, `load` to ask)."""

    def __init__(self, directory: DirectoryClient) -> None:
        self._directory = directory
        self._names: dict[str, tuple[str, float]] = {}

    def known(self, node_id: str) -> str:
        """The node's name if it was asked lately, else ""."""
        found = self._names.get(node_id)
        return found[0] if found else ""

    async def load(self, node_ids: Iterable[str]) -> dict[str, str]:
        """The names of `node_ids` (asked of the Directory unless kept); an id it lacks, or all
        while it cannot be asked, stays unnamed ("")."""
        wanted = {n for n in node_ids if n}
        moment = time.monotonic()
        stale = [
            n for n in wanted if moment - self._names.get(n, ("", -KEEP_SECONDS))[1] >= KEEP_SECONDS
        ]
        if stale:
            try:
                nodes = await self._directory.nodes(sorted(stale))
            except grpc.aio.AioRpcError:
                nodes = []
            for node in nodes:
                self._names[node.node_id] = (node.name, moment)
        return {n: self.known(n) for n in wanted}

    async def under(self, node_id: str, kind: str) -> list[tuple[str, str]]:
        """The nodes of `kind` under `node_id` (the whole county for ""), as (id, name)."""
        try:
            nodes = await self._directory.nodes(under_node_id=node_id or "", kind=kind)
        except grpc.aio.AioRpcError:
            return []
        moment = time.monotonic()
        for node in nodes:
            self._names[node.node_id] = (node.name, moment)
        return [(node.node_id, node.name) for node in nodes]
