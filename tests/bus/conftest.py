"""Bus test fixtures: settings on the real embedded broker with quick retries, a producer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gridline.bus.producer import EventProducer
from gridline.embedded import EmbeddedBroker
from gridline.settings import Settings

# How many times a record is tried before it is dead-lettered; a module may override it.
MAX_ATTEMPTS = 3


@pytest.fixture
def max_attempts() -> int:
    return MAX_ATTEMPTS


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path, max_attempts: int) -> Settings:
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,
        data_dir=tmp_path,
        consumer_max_attempts=max_attempts,
        consumer_retry_backoff_seconds=0.01,
        consumer_session_timeout_ms=3000,
        consumer_rebalance_timeout_ms=2000,
    )


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    async with EventProducer(settings) as events:
        yield events
