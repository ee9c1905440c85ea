"""The database pool's use as Prometheus gauges: the USE dashboard's saturation of a database.

`gridline.db.Database` calls `instrument_pool(self.engine, service)` once its engine exists.
"""

from __future__ import annotations

import math

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, QueuePool

from gridline.metrics import DB_POOL_CAPACITY, DB_POOL_CHECKED_OUT


def instrument_pool(engine: AsyncEngine, database: str) -> None:
    """Export the engine's checked-out connections and its pool's capacity under `database`.

    The count is read from the pool at each scrape rather than kept by checkout and checkin
    events: a connection invalidated on the way (a dead socket found by pre-ping) makes an
    event count drift over a process's life, and the pool's own count cannot. The engine's
    current pool is asked each time, since `dispose()` replaces it (with the same bounds).
    """
    sync_engine = engine.sync_engine
    DB_POOL_CHECKED_OUT.labels(database).set_function(lambda: _checked_out(sync_engine.pool))
    capacity = _capacity(sync_engine.pool)
    if capacity is not None:
        DB_POOL_CAPACITY.labels(database).set(capacity)


def _checked_out(pool: Pool) -> int:
    """Connections in use; a pool that keeps no count (NullPool, StaticPool) reports zero."""
    return pool.checkedout() if isinstance(pool, QueuePool) else 0


def _capacity(pool: Pool) -> float | None:
    """Size plus overflow of a queue pool (+Inf when the overflow is unbounded); None for the
    pools that have no bound to saturate."""
    if not isinstance(pool, QueuePool):
        return None
    overflow: int = getattr(pool, "_max_overflow", 0)  # no public accessor in SQLAlchemy 2
    return math.inf if overflow < 0 else float(pool.size() + overflow)
