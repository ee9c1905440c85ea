"""Each service's own database: an SQLite file by default, its own schema on PostgreSQL."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, Dialect, MetaData, Select, Table, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.db_metrics import instrument_pool
from gridline.settings import Settings
from gridline.timestamps import in_utc
from gridline.tracing import instrument_engine

QueryT = TypeVar("QueryT", bound=Select[*tuple[Any, ...]])

_ALEMBIC_ENV = Path(__file__).resolve().parent / "migrations"

# Run inside a session's transaction just before it commits (the outbox writes its rows here).
BeforeCommit = Callable[[AsyncSession], Awaitable[None]]
_AFTER_COMMIT = "gridline.after_commit"
_AFTER_ROLLBACK = "gridline.after_rollback"
_BEFORE_COMMIT = "gridline.before_commit"
# Where the outbox keeps what a transaction staged until its hook writes it.
STAGED = "gridline.staged"


def before_commit(session: AsyncSession, key: str, hook: BeforeCommit) -> None:
    """Run `hook` once, inside the session's transaction, just before it commits.

    Registered under `key` once however often it is asked, so that handlers applied in one
    batch transaction can gather rows and have them written by one statement at the end.
    """
    session.info.setdefault(_BEFORE_COMMIT, {}).setdefault(key, hook)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never on a rollback).

    For effects outside the database, such as in-memory counts, that must not happen twice
    when a batch is rolled back and applied again record by record.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def after_rollback(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` if the session's transaction does not commit (an error, a failed commit).

    For in-memory state a transaction took for itself, to be given back when it is undone.
    """
    session.info.setdefault(_AFTER_ROLLBACK, []).append(callback)


def database_url(settings: Settings, service: str) -> str:
    """The async SQLAlchemy URL a service uses."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(settings.data_dir / f'{service}.db').resolve()}"
    url = make_url(settings.database_url)
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    return url.render_as_string(hide_password=False)


# Each execution of a prepared statement is planned for its own values. A batch's statements
# look up hundreds of ids in tables that grow from empty; by default PostgreSQL weighs a
# generic plan after five executions and keeps it if it looks no dearer: weighed while a table
# was empty, it stayed a sequential scan until autovacuum's first ANALYZE. Assignment's
# open-case lookup took 190 ms a batch at 20,000 placements, 4 ms planned for its values.
_POSTGRES_SESSION = {"server_settings": {"plan_cache_mode": "force_custom_plan"}}


class Database:
    """An async engine bound to one service's tables."""

    def __init__(
        self,
        settings: Settings,
        service: str,
        tables: Sequence[Table],
        migrations: Path | None = None,
    ) -> None:
        self.url = database_url(settings, service)
        self._migrations = migrations
        self.is_sqlite = self.url.startswith("sqlite")
        self.schema = None if self.is_sqlite else service
        self._tables = list(tables)
        options = {} if self.is_sqlite else {"schema_translate_map": {None: self.schema}}
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            execution_options=options,
            connect_args={} if self.is_sqlite else _POSTGRES_SESSION,
            pool_pre_ping=not self.is_sqlite,
            # The connection returned last is taken first: its PostgreSQL backend's caches are
            # warm (a FIFO pool walks a batch's sessions through every backend in turn).
            pool_use_lifo=True,
            hide_parameters=True,  # bound values are addresses and links: never in an error
        )
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        instrument_engine(self.engine)
        instrument_pool(self.engine, service)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self.before_commit: list[BeforeCommit] = []

    async def __aenter__(self) -> Database:
        await self.create_tables()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.dispose()

    async def create_tables(self) -> None:
        """Bring the service's schema and tables to the current version.

        With `migrations` (the service's Alembic revisions) the database is upgraded to the
        newest revision, one replica at a time on PostgreSQL; without, missing tables are
        created (tests' own tables).
        """
        async with self.engine.begin() as conn:
            if self.schema:
                # Replicas starting together create and migrate one after the other.
                lock = zlib.crc32(f"gridline migrate {self.schema}".encode())
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                # Statements a revision writes without a schema (ALTERs are not mapped by the
                # engine's schema translation) land in the service's own schema.
                await conn.execute(text(f'SET LOCAL search_path TO "{self.schema}"'))
            if self._migrations is None:
                await conn.run_sync(lambda sync: _create(sync, self._tables))
                return
            migrations = self._migrations
            await conn.run_sync(lambda sync: upgrade(sync, migrations, self._tables, self.schema))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        The `before_commit` hooks run inside the transaction just before it commits; callbacks
        given to `after_commit` run once it has, those given to `after_rollback` if it has not.
        """
        async with self._sessions() as session:
            try:
                async with session.begin():
                    yield session
                    # The session's own hooks first: what they write may stage events.
                    for hook in session.info.pop(_BEFORE_COMMIT, {}).values():
                        await hook(session)
                    for hook in self.before_commit:
                        await hook(session)
                    if session.info.get(STAGED):
                        raise RuntimeError("events were staged in a database that has no outbox")
            except BaseException:
                for callback in session.info.pop(_AFTER_ROLLBACK, ()):
                    callback()
                raise
            for callback in session.info.pop(_AFTER_COMMIT, ()):
                callback()

    def has_table(self, name: str) -> bool:
        """Whether the service declared a table of that name."""
        return any(table.name == name for table in self._tables)

    async def ping(self) -> bool:
        """Whether the database answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def alembic_config(
    sync_conn: Connection, migrations: Path, metadata: MetaData, schema: str | None
) -> Config:
    """Alembic's configuration for one service's revisions on an open connection."""
    config = Config()
    config.set_main_option("script_location", str(_ALEMBIC_ENV))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(migrations))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes.update(connection=sync_conn, metadata=metadata, schema=schema)
    return config


def upgrade(
    sync_conn: Connection, migrations: Path, tables: Sequence[Table], schema: str | None
) -> None:
    """Upgrade a service's database to its newest revision.

    A database that the release before migrations created has tables but no version: it is
    stamped with the first revision (which is that release's schema), then upgraded.
    """
    config = alembic_config(sync_conn, migrations, tables[0].metadata, schema)
    context = MigrationContext.configure(sync_conn, opts={"version_table_schema": schema})
    if context.get_current_revision() is None and inspect(sync_conn).has_table(
        tables[0].name, schema=schema
    ):
        base = ScriptDirectory.from_config(config).get_base()
        assert base is not None, f"no revisions in {migrations}"
        command.stamp(config, base)
    command.upgrade(config, "head")


def _create(sync_conn: Connection, tables: list[Table]) -> None:
    tables[0].metadata.create_all(sync_conn, tables=tables)


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: object) -> None:
    # WAL lets readers run beside the single writer; the busy timeout absorbs short write locks.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def dialect(session: AsyncSession) -> str:
    """The kind of database the session works on: `sqlite` or `postgresql`."""
    if session.bind is None:
        raise RuntimeError("the session is bound to no engine")
    return session.bind.dialect.name


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table class.

    SQLModel's metaclass sets `__table__` without declaring it; the class's mapper has it typed.
    """
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back aware, in UTC, on SQLite (which keeps no zone) as
    on PostgreSQL; its DDL is that of `DateTime(timezone=True)`."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Any aware moment is stored as UTC (SQLite would drop its zone); a naive one is UTC."""
        return None if value is None else in_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, the text SQLAlchemy's DATETIME stores (`2026-01-30 06:05:00.000000`),
        made in one step by `isoformat` in C instead of its formatting of seven fields: every
        row written and every bound moment passes here."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            return in_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """SQLite hands the stored UTC value back without its zone."""
        return None if value is None else in_utc(value)


def utc_timestamp() -> UtcDateTime:
    """The column type of every timestamp (`Field(sa_type=utc_timestamp())`)."""
    return UtcDateTime()


def due_rows(query: QueryT, due_at: Mapped[datetime | None], moment: datetime) -> QueryT:
    """`query` narrowed to the rows whose `due_at` has come by `moment`, locked for the
    transaction, ordered by `due_at` after any order the query already has.

    Rows another replica holds locked are skipped (PostgreSQL SKIP LOCKED), so replicas take
    different rows; SQLite has one writer and takes no row locks.
    """
    return query.where(due_at <= moment).order_by(due_at).with_for_update(skip_locked=True)
