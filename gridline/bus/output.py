"""What a producing service opens once: the producer, its outbox relay and their retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gridline.bus.outbox import Outbox
from gridline.bus.producer import EventProducer
from gridline.bus.retention import Retention
from gridline.db import Database
from gridline.settings import Settings


@asynccontextmanager
async def event_output(settings: Settings, db: Database) -> AsyncIterator[Outbox]:
    """Open the producer, the outbox relaying to it and the ledger and outbox retention.

    Enter it after the database and before the consumers, so that on the way out the consumers
    stop first and the outbox then publishes what they committed last.
    """
    async with (
        EventProducer(settings) as producer,
        Outbox(db, producer, settings) as outbox,
        Retention(db, settings, outbox),
    ):
        yield outbox
