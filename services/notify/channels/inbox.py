"""The local inbox: one JSON line per delivery, so the embedded run shows deliveries offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gridline.timestamps import now
from services.notify.channels.base import Message


class InboxChannel:
    """Appends each message to a JSON-lines file."""

    name = "inbox"

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()

    async def send(self, message: Message) -> None:
        """Append the message with its delivery time."""
        line = json.dumps(
            {**message.as_json(), "delivered_at": now().isoformat()}, ensure_ascii=False
        )
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self._path.open("a", encoding="utf-8") as inbox:
            inbox.write(line + "\n")

    async def close(self) -> None:
        """Nothing to release."""
