"""One escalation replica for the exactly-once test: fires what is due, prints what it fired.

`python -m tests.escalation.replica DB_URL BOOTSTRAP MOMENT GO_FILE` prints a line `ready` once set
up and waits for GO_FILE (so that both replicas start together), then passes over the due
deadlines at MOMENT until none is left, publishes what it staged and prints the escalation ids it
raised as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, func, select

from gridline.bus.output import event_output
from gridline.db import Database
from gridline.settings import Settings
from services.escalation import storage
from services.escalation.deadlines import fire_due
from services.escalation.policy import every_level_after
from tests.escalation.conftest import static_chain

_MAX_PASSES = 2000


async def _due(db: Database, moment: datetime) -> int:
    async with db.session() as session:
        query = select(func.count()).where(col(storage.Task.deadline_at) <= moment)
        return (await session.exec(query)).one()


async def main(db_url: str, bootstrap: str, moment: datetime, go: Path) -> list[str]:
    """Fire until nothing is due; the ids this replica raised."""
    settings = Settings(database_url=db_url, kafka_bootstrap=bootstrap, kafka_idempotence=False)
    policy = every_level_after(timedelta(minutes=30))
    fired: list[str] = []
    async with (
        Database(settings, "escalation", storage.TABLES) as db,
        event_output(settings, db),
    ):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        for _ in range(_MAX_PASSES):
            if await asyncio.to_thread(go.exists):
                break
            await asyncio.sleep(0.05)
        for _ in range(_MAX_PASSES):
            fired += await fire_due(db, static_chain, policy, moment)
            if await _due(db, moment) == 0:
                break
            # The rest is locked by the other replica: look again shortly.
            await asyncio.sleep(0.01)
    return fired


if __name__ == "__main__":
    url, servers, at, go_file = sys.argv[1:5]
    ids = asyncio.run(main(url, servers, datetime.fromisoformat(at), Path(go_file)))
    sys.stdout.write(json.dumps(ids))
