"""The grids that must file a daily zero-report, read from assignment's Directory over gRPC.

Every grid some cadre serves must report; the offices above it come from its chain. The roster
is read again every `refresh`, and kept when the Directory cannot be reached. Household counts
are asked for when the summaries are due, within a bound: without them the summaries go out with
the visit rate unknown (—).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import grpc

from gridline.contracts.v1 import common_pb2
from gridline.directory_client import DirectoryClient
from gridline.logging import get_logger
from gridline.timestamps import now
from services.escalation.zero_reports import SUMMARY_LEVELS, RosterGrid

log = get_logger(__name__)


class DirectoryRoster:
    """The zero-report roster (`await grids()`, `await households()`) from the Directory."""

    def __init__(
        self,
        directory: DirectoryClient,
        refresh: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = now,
        households_within: float = 5.0,
    ) -> None:
        self._directory = directory
        self._refresh, self._clock = refresh, clock
        self._households_within = households_within
        self._grids: list[RosterGrid] = []
        self._read_at: datetime | None = None

    async def grids(self) -> list[RosterGrid]:
        """The grids and their offices (cached for `refresh`; the last ones while unreachable).

        Raises the Directory's error when no roster was ever read.
        """
        moment = self._clock()
        if self._read_at is None or moment - self._read_at >= self._refresh:
            try:
                self._grids = await self._read()
            except grpc.aio.AioRpcError as exc:
                if self._read_at is None:
                    raise
                log.warning("directory unreachable, keeping the zero-report roster",
                            code=exc.code().name, read_at=self._read_at.isoformat())  # fmt: skip
            else:
                self._read_at = moment
        return self._grids

    async def households(self) -> dict[str, int] | None:
        """Every grid's household count now; None (and a warning) when the Directory gives none
        within `households_within` seconds."""
        try:
            async with asyncio.timeout(self._households_within):
                return await self._directory.grid_households()
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else "TIMEOUT"
            log.warning("household counts unavailable, visit rate left unknown", code=code)
        return None

    async def _names(self, grid_ids: list[str]) -> dict[str, str]:
        """Each grid's name as offices say it: its community's name before its own (城北社区三汇
        小区); a grid the Directory does not name keeps its id."""
        grids = {n.node_id: n for n in await self._directory.nodes(grid_ids)}
        parents = {
            n.node_id: n
            for n in await self._directory.nodes(sorted({g.parent_id for g in grids.values()}))
        }
        names = {}
        for grid_id in grid_ids:
            grid = grids.get(grid_id)
            if grid is None:
                names[grid_id] = grid_id
                continue
            parent = parents.get(grid.parent_id)
            community = parent.name if parent is not None and parent.kind == "community" else ""
            names[grid_id] = community + grid.name
        return names

    async def _read(self) -> list[RosterGrid]:
        cadres = await self._directory.cadre_load()
        grid_ids = sorted({g for cadre in cadres for g in cadre.grid_ids})
        names = await self._names(grid_ids)
        grids = []
        for grid_id in grid_ids:
            offices: dict[int, common_pb2.Responsible] = {
                r.level: r
                for r in await self._directory.chain(grid_id)
                if r.level in SUMMARY_LEVELS
            }
            grids.append(RosterGrid(grid_id, names[grid_id], None, offices))
        return grids
