"""How the services' database connections are set up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from gridline.bus.ledger import PROCESSED_EVENT_TABLE
from gridline.db import Database, UtcDateTime, after_commit, after_rollback
from gridline.settings import Settings
from tests.helpers import moments


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


async def test_a_transaction_runs_its_rollback_callbacks_only_when_it_does_not_commit(
    tmp_path: Path,
) -> None:
    ran: list[str] = []
    async with Database(Settings(data_dir=tmp_path), "callbacks", [PROCESSED_EVENT_TABLE]) as db:
        async with db.session() as session:
            after_commit(session, lambda: ran.append("committed"))
            after_rollback(session, lambda: ran.append("undone"))
        with pytest.raises(RuntimeError):
            async with db.session() as session:
                after_commit(session, lambda: ran.append("committed too"))
                after_rollback(session, lambda: ran.append("undone too"))
                raise RuntimeError("the transaction fails")
    assert ran == ["committed", "undone too"]


@given(moments(datetime(1, 1, 2), datetime(9999, 12, 30)))
def test_a_moment_is_stored_on_sqlite_as_sqlalchemy_s_own_datetime_stores_it(
    moment: datetime,
) -> None:
    dialect = sqlite.dialect()
    # As the engine uses the type: its copy holding SQLite's own DATETIME.
    column_type = UtcDateTime().dialect_impl(dialect)
    assert isinstance(column_type, UtcDateTime)
    ours = column_type.bind_processor(dialect)
    theirs = TypeDecorator.bind_processor(column_type, dialect)
    assert ours is not None and theirs is not None
    assert ours(moment) == theirs(moment)
    assert ours(None) is None
