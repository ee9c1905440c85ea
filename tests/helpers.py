"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gridline.settings import Settings


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
