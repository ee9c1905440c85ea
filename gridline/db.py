"""Each service's own database: an SQLite file by default, its own schema on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import DateTime, Table, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from gridline.settings import Settings
from gridline.tracing import instrument_engine


def database_url(settings: Settings, service: str) -> str:
    """The async SQLAlchemy URL a service uses."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(settings.data_dir / f'{service}.db').resolve()}"
    url = make_url(settings.database_url)
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+asyncpg")
    return url.render_as_string(hide_password=False)


class Database:
    """An async engine bound to one service's tables."""

    def __init__(self, settings: Settings, service: str, tables: Sequence[Table]) -> None:
        self.url = database_url(settings, service)
        self.is_sqlite = self.url.startswith("sqlite")
        self.schema = None if self.is_sqlite else service
        self._tables = list(tables)
        options = {} if self.is_sqlite else {"schema_translate_map": {None: self.schema}}
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            execution_options=options,
            pool_pre_ping=not self.is_sqlite,
        )
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        instrument_engine(self.engine)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    async def __aenter__(self) -> Database:
        await self.create_tables()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.dispose()

    async def create_tables(self) -> None:
        """Create the service's schema and tables if they are missing."""
        async with self.engine.begin() as conn:
            if self.schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            await conn.run_sync(lambda sync: _create(sync, self._tables))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self._sessions() as session, session.begin():
            yield session

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


def _create(sync_conn: object, tables: list[Table]) -> None:
    tables[0].metadata.create_all(sync_conn, tables=tables)  # type: ignore[arg-type]


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    # WAL lets readers run beside the single writer; the busy timeout absorbs short write locks.
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def utc_timestamp() -> DateTime:
    """The column type of every timestamp: timezone-aware on PostgreSQL."""
    return DateTime(timezone=True)
