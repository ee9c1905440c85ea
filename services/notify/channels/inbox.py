"""The local inbox: one JSON line per delivery, so the embedded run shows deliveries offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gridline.timestamps import now
from services.notify.channels.base import Outgoing


class InboxChannel:
    """Appends each message to a JSON-lines file."""

    name = "inbox"
    # A resend after a crash finds the line already there.
    idempotent = True

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()
        self._written = self._ids_in(path)

    @staticmethod
    def _ids_in(path: Path) -> set[str]:
        if not path.exists():
            return set()
        ids: set[str] = set()
        with path.open(encoding="utf-8") as inbox:
            for line in inbox:
                try:
                    ids.add(json.loads(line)["notification_id"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash mid-write
        return ids

    async def send(self, outgoing: Outgoing) -> None:
        """Append the message with its delivery time, unless it is already there."""
        message = outgoing.message
        if message.notification_id in self._written:
            return
        line = json.dumps(
            {**message.as_json(), "delivered_at": now().isoformat()}, ensure_ascii=False
        )
        async with self._lock:
            await asyncio.to_thread(self._append, line)
            self._written.add(message.notification_id)

    def _append(self, line: str) -> None:
        with self._path.open("a", encoding="utf-8") as inbox:
            inbox.write(line + "\n")

    async def close(self) -> None:
        """Nothing to release."""
