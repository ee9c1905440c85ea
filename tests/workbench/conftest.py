"""One platform for the workbench's browser tests (module-scoped) and one headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, async_playwright

from gridline_cli.platform import Platform
from tests.conftest import WebhookServer
from tests.e2e.conftest import start_platform

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, webhook: WebhookServer
) -> Iterator[Platform]:
    """The whole platform on embedded parts, delivering to the loopback webhook."""
    running = start_platform(tmp_path_factory.mktemp("workbench"), webhook, ack_deadline=3600)
    yield running
    running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()
