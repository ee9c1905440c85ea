"""The local inbox: one JSON line per delivery, so the embedded run shows deliveries offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gridline.timestamps import now
from services.notify.channels.base import Outgoing


class InboxChannel:
    """Appends each message to a JSON-lines file.

    Lines sent at the same time are appended together, with one trip to a thread: concurrent
    deliveries cost one file write, not one each.
    """

    name = "inbox"
    # A resend after a crash finds the line already there.
    idempotent = True

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._written = self._ids_in(path)
        # Lines waiting for the writer: notification id, line, and the sender waiting for it.
        self._waiting: list[tuple[str, str, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

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
        """Append the message with its delivery time, unless it is already there; returns once
        the line is written."""
        message = outgoing.message
        if message.notification_id in self._written:
            return
        line = json.dumps(
            {**message.as_json(), "delivered_at": now().isoformat()}, ensure_ascii=False
        )
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((message.notification_id, line, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="inbox writer")
        await written

    async def _write_waiting(self) -> None:
        """Append everything waiting, in turns, until nothing is."""
        while self._waiting:
            turn, self._waiting = self._waiting, []
            fresh: dict[str, str] = {}
            for notification_id, line, _ in turn:
                if notification_id not in self._written:
                    fresh.setdefault(notification_id, line)
            try:
                await asyncio.to_thread(self._append, list(fresh.values()))
            except Exception as exc:
                for _, _, written in turn:
                    if not written.done():
                        written.set_exception(exc)
                continue
            self._written.update(fresh)
            for _, _, written in turn:
                if not written.done():
                    written.set_result(None)

    def _append(self, lines: list[str]) -> None:
        if not lines:
            return
        with self._path.open("a", encoding="utf-8") as inbox:
            inbox.write("".join(line + "\n" for line in lines))

    async def close(self) -> None:
        """Let the writer finish what it holds."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
