"""How the services' database connections are set up."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.db import Database
from gridline.settings import Settings


async def test_postgresql_plans_each_execution_for_its_own_values(
    postgres_database: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_database)
    # Two connections of the pool at once: a batch's session may take any of them.
    async with (
        Database(settings, "plans", [PROCESSED_EVENT_TABLE]) as db,
        db.session() as first,
        db.session() as second,
    ):
        for session in (first, second):
            mode = await (await session.connection()).scalar(text("SHOW plan_cache_mode"))
            assert mode == "force_custom_plan"
