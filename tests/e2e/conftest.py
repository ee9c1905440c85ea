"""The whole platform as `gridline up` runs it, with a loopback webhook for deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridline_cli.platform import Platform, PlatformOptions
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from tests.conftest import REDIS_URL, WebhookServer

ACK_DEADLINE_SECONDS = 3.0


@pytest.fixture(scope="session")
def demo_directory() -> Directory:
    """The demo county the platform loads, to know each household's chain."""
    county = generate()
    return Directory(county.nodes, county.people, county.groups, county.micro_grids)


def start_platform(
    data_dir: Path,
    webhook: WebhookServer,
    *,
    database_url: str = "",
    redis_url: str = "",
    ack_deadline: float = ACK_DEADLINE_SECONDS,
    extra_env: dict[str, str] | None = None,
) -> Platform:
    """A started platform delivering to the loopback webhook (`extra_env` adds or overrides)."""
    platform = Platform(
        PlatformOptions(
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            ack_deadline_seconds=ack_deadline,
            extra_env={
                "GRIDLINE_NOTIFY_WEBHOOK_URL": f"{webhook.url}/hooks/{{group_id}}",
                "GRIDLINE_ESCALATION_TICK_SECONDS": "0.2",
                "GRIDLINE_LOG_LEVEL": "INFO",
                **(extra_env or {}),
            },
        )
    )
    try:
        platform.start()
    except BaseException:
        platform.stop()
        raise
    return platform


@pytest.fixture(scope="module", params=["embedded", "postgres-redis"])
def platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    webhook: WebhookServer,
) -> Iterator[Platform]:
    """The platform on embedded parts, and again on PostgreSQL and Redis when given."""
    database_url = redis_url = ""
    if request.param == "postgres-redis":
        if not REDIS_URL:
            pytest.skip("GRIDLINE_TEST_REDIS_URL is not set")
        database_url = request.getfixturevalue("postgres_database")
        redis_url = REDIS_URL
    running = start_platform(
        tmp_path_factory.mktemp(f"platform-{request.param}"),
        webhook,
        database_url=database_url,
        redis_url=redis_url,
    )
    yield running
    running.stop()
    assert running.unclean_exits() == {}, "a service did not stop gracefully on SIGTERM"
