"""The grids that must file a daily zero-report, read from assignment's Directory over gRPC.

Every grid some cadre serves must report; the offices above it come from its chain. The
Directory does not serve household counts, so runtime summaries show no visit rate (—).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from gridline.contracts.v1 import common_pb2
from gridline.directory_client import DirectoryClient
from gridline.timestamps import now
from services.escalation.zero_reports import SUMMARY_LEVELS, RosterGrid


class DirectoryRoster:
    """A roster source (`await roster()`), read again once `refresh` has passed."""

    def __init__(
        self,
        directory: DirectoryClient,
        refresh: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._directory = directory
        self._refresh, self._clock = refresh, clock
        self._grids: list[RosterGrid] = []
        self._read_at: datetime | None = None

    async def __call__(self) -> list[RosterGrid]:
        """The grids and their offices (cached for `refresh`)."""
        moment = self._clock()
        if self._read_at is None or moment - self._read_at >= self._refresh:
            self._grids = await self._read()
            self._read_at = moment
        return self._grids

    async def _read(self) -> list[RosterGrid]:
        cadres = await self._directory.cadre_load()
        grids = []
        for grid_id in sorted({g for cadre in cadres for g in cadre.grid_ids}):
            offices: dict[int, common_pb2.Responsible] = {
                r.level: r
                for r in await self._directory.chain(grid_id)
                if r.level in SUMMARY_LEVELS
            }
            grids.append(RosterGrid(grid_id, grid_id, 0, offices))
        return grids
