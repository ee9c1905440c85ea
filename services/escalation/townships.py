"""The township of each grid with open tasks, for the follow-up gauges' `township` label.

The label is the township office's name, which county staff read on the dashboards; a task
stores its township's id (tasks created before that change do not), and only the Directory
knows the names and which township a grid belongs to. The open-task gauges therefore ask for the
chain of each grid that has open tasks, a few at a time outside any transaction, and remember
the answer for `refresh`: a grid changes township with a directory import, not by the minute,
and a county's few thousand grids are then asked once per refresh, not at every count.

What was learnt also serves the counters raised where no chain is at hand (a missed check-in
told to its cadre): `known(grid_id)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from services.escalation.chains import ChainLookup, look_up
from services.escalation.metrics import UNKNOWN_TOWNSHIP, township_label

# Grid id → township label, learnt in this process (as many entries as the directory has grids).
_KNOWN: dict[str, str] = {}


def known(grid_id: str) -> str:
    """The township last learnt for the grid, or `unknown`; never asks the Directory."""
    return _KNOWN.get(grid_id, UNKNOWN_TOWNSHIP)


class Townships:
    """The township label of grids, from their chains, each remembered for `refresh` seconds."""

    def __init__(
        self,
        chain_of: ChainLookup,
        refresh: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chain_of, self._refresh, self._clock = chain_of, refresh, clock
        self._read_at: dict[str, float] = {}

    async def of(self, grid_ids: Collection[str]) -> dict[str, str]:
        """The township of each grid. Grids not read within `refresh` are looked up again; one
        whose lookup fails keeps what was learnt before (else `unknown`) and is asked next time.
        """
        moment = self._clock()
        stale = {
            grid_id
            for grid_id in grid_ids
            if grid_id not in self._read_at or moment - self._read_at[grid_id] >= self._refresh
        }
        if stale:
            found = await look_up(self._chain_of, stale)
            for grid_id, chain in found.chains.items():
                _KNOWN[grid_id] = township_label(chain)
                self._read_at[grid_id] = moment
        return {grid_id: known(grid_id) for grid_id in grid_ids}
