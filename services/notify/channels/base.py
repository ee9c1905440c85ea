"""The one interface every delivery channel implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    """A rendered notification for one recipient group."""

    notification_id: str
    kind: str
    level: int
    group_id: str
    group_name: str
    title: str
    text: str
    link: str
    task_id: str
    report_id: str
    report_accepted_at: str

    def as_json(self) -> dict[str, Any]:
        """The message as a JSON object."""
        return asdict(self)


class PermanentFailure(Exception):
    """Retrying cannot help (bad address, refused credentials)."""


class Channel(Protocol):
    """Delivers a message; raises PermanentFailure, or any other error for a transient one."""

    name: str

    async def send(self, message: Message) -> None:
        """Deliver one message."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
