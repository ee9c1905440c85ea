"""The grids that must file a daily zero-report, read from assignment's Directory over gRPC.

Every grid some cadre serves must report; the offices above it come from its chain. The
Directory does not serve household counts, so runtime summaries show no visit rate (—).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from gridline.contracts.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from gridline.rpc import call, channel
from gridline.timestamps import now
from services.escalation.zero_reports import SUMMARY_LEVELS, RosterGrid


class DirectoryRoster:
    """A roster source (`await roster()`), read again once `refresh` has passed."""

    def __init__(
        self,
        target: str,
        refresh: timedelta = timedelta(minutes=10),
        timeout: float = 5.0,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._channel = channel(target)
        self._stub = directory_pb2_grpc.DirectoryStub(self._channel)
        self._refresh, self._timeout, self._clock = refresh, timeout, clock
        self._grids: list[RosterGrid] = []
        self._read_at: datetime | None = None

    async def __aenter__(self) -> DirectoryRoster:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._channel.close()

    async def __call__(self) -> list[RosterGrid]:
        """The grids and their offices (cached for `refresh`)."""
        moment = self._clock()
        if self._read_at is None or moment - self._read_at >= self._refresh:
            self._grids = await self._read()
            self._read_at = moment
        return self._grids

    async def _read(self) -> list[RosterGrid]:
        cadres = await call(
            self._stub.ListCadreLoad,
            directory_pb2.ListCadreLoadRequest(),
            deadline=self._timeout,
            attempts=3,
        )
        grids = []
        for grid_id in sorted({g for cadre in cadres.cadres for g in cadre.grid_ids}):
            chain = await call(
                self._stub.GetChain,
                directory_pb2.GetChainRequest(node_id=grid_id),
                deadline=self._timeout,
                attempts=3,
            )
            offices: dict[int, common_pb2.Responsible] = {
                r.level: r for r in chain.levels if r.level in SUMMARY_LEVELS
            }
            grids.append(RosterGrid(grid_id, grid_id, 0, offices))
        return grids
