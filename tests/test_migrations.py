"""Each service's Alembic revisions: a database of the previous release upgrades with its data
kept, and the newest revision is exactly the tables the code declares."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.types import TypeEngine

from gridline.db import Database, alembic_config, upgrade
from gridline.settings import Settings

SERVICES = ("intake", "assignment", "escalation", "notify")
ROWS = 3


def storage_of(service: str) -> ModuleType:
    return importlib.import_module(f"services.{service}.storage")


def value_for(column_type: TypeEngine[Any], table: str, column: str, n: int) -> Any:
    """A value of the column's type, different for each row."""
    if isinstance(column_type, JSON):
        return {"row": n}
    if isinstance(column_type, Boolean):
        return n % 2 == 0
    if isinstance(column_type, Integer):
        return n + 1
    if isinstance(column_type, Float):
        return n + 0.5
    if isinstance(column_type, DateTime):
        return datetime(2022, 1, 30, 8, n, tzinfo=UTC)
    if isinstance(column_type, LargeBinary):
        return f"{table}.{column}.{n}".encode()
    if isinstance(column_type, String):
        length = column_type.length or 40
        return f"{n}{column}"[:length]
    raise AssertionError(f"no sample value for {table}.{column} of type {column_type!r}")


def fill(conn: Connection) -> dict[str, int]:
    """Put ROWS rows in every table the database has; returns the count per table."""
    counts = {}
    metadata = MetaData()
    metadata.reflect(conn)
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        rows = [
            {c.name: value_for(c.type, table.name, c.name, n) for c in table.columns}
            for n in range(ROWS)
        ]
        conn.execute(table.insert(), rows)
        counts[table.name] = ROWS
    return counts


def migrations_of(service: str) -> Path:
    found: Path = storage_of(service).MIGRATIONS
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_a_previous_release_database_upgrades_with_every_row_kept(
    service: str, tmp_path: Path
) -> None:
    tables: list[Table] = storage_of(service).TABLES
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        # The first revision is the previous release's schema, as its create_all left it:
        # no version table.
        upgrade_to(conn, service, tables, "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        before = fill(conn)
    with engine.begin() as conn:
        upgrade(conn, migrations_of(service), tables, None)
    with engine.connect() as conn:
        metadata = MetaData()
        metadata.reflect(conn)
        for name, count in before.items():
            rows = conn.execute(select(metadata.tables[name])).mappings().all()
            assert len(rows) == count, name
            first = metadata.tables[name].columns.keys()[0]
            assert sorted(str(r[first]) for r in rows) == sorted(
                str(value_for(metadata.tables[name].c[first].type, name, first, n))
                for n in range(ROWS)
            ), name
        assert not compare(conn, tables), "the newest revision differs from the code's tables"


@pytest.mark.parametrize("service", SERVICES)
def test_the_newest_revision_is_the_code_s_tables(service: str, tmp_path: Path) -> None:
    tables: list[Table] = storage_of(service).TABLES
    engine = create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.begin() as conn:
        upgrade(conn, migrations_of(service), tables, None)
    with engine.connect() as conn:
        differences = compare(conn, tables)
    assert not differences, (
        f"{service}'s tables changed without a revision: run "
        f"`gridline migrate revision {service} MESSAGE`\n{differences}"
    )


async def test_a_service_database_on_postgresql_upgrades_in_its_own_schema(
    postgres_database: str,
) -> None:
    settings = Settings(database_url=postgres_database)
    for service in SERVICES:
        storage = storage_of(service)
        async with Database(settings, service, storage.TABLES, storage.MIGRATIONS) as db:
            async with db.engine.connect() as conn:
                names = await conn.run_sync(table_names, service)
            assert {t.name for t in storage.TABLES} | {"alembic_version"} == set(names)
        # A second start (another replica) finds everything done.
        async with Database(settings, service, storage.TABLES, storage.MIGRATIONS):
            pass


def table_names(conn: Connection, schema: str) -> list[str]:
    return inspect(conn).get_table_names(schema=schema)


def upgrade_to(conn: Connection, service: str, tables: list[Table], revision: str) -> None:
    config = alembic_config(conn, migrations_of(service), tables[0].metadata, None)
    command.upgrade(config, revision)


def compare(conn: Connection, tables: list[Table]) -> list[Any]:
    metadata = MetaData()
    for table in tables:
        table.to_metadata(metadata)
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))
