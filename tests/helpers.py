"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from hypothesis import strategies as st

from gridline.settings import Settings
from gridline.timestamps import SHANGHAI


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 30.0) -> None:
    """Wait until `check` holds, polling; fail the test if it does not within the bound."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"condition not met within {within}s"
        await asyncio.sleep(0.05)


def database_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """`settings` on the kind of database the test is parametrized with (`sqlite`, `postgresql`:
    skipped unless GRIDLINE_TEST_POSTGRES_URL is set)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_database")
        return settings.model_copy(update={"database_url": url})
    return settings


def moments(earliest: datetime, latest: datetime) -> st.SearchStrategy[datetime]:
    """Moments between two naive UTC datetimes, drawn aware in UTC, aware in Beijing time, or
    naive (which the platform takes to be UTC)."""
    return st.builds(
        lambda moment, zone: (
            moment.replace(tzinfo=None) if zone is None else moment.astimezone(zone)
        ),
        st.datetimes(min_value=earliest, max_value=latest, timezones=st.just(UTC)),
        st.sampled_from([UTC, SHANGHAI, None]),
    )
