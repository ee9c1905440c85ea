"""The one interface every delivery channel implements, and what it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gridline.privacy import scrub_text
from services.notify.groups import Robot


@dataclass(frozen=True)
class Message:
    """A notification for one recipient group, as the inbox and the generic webhook carry it."""

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
        """The message as a JSON object, its free text masked."""
        # Every field is a str or an int: a shallow copy is the whole object (asdict deep-copies).
        return {
            **vars(self),
            "title": scrub_text(self.title),
            "text": scrub_text(self.text),
            "group_name": scrub_text(self.group_name),
        }


@dataclass(frozen=True)
class Rendered:
    """A message rendered once per style: robots take markdown or text, SMS a short template."""

    title: str
    markdown: str
    text: str
    sms_text: str
    sms_params: dict[str, str]


@dataclass(frozen=True)
class Outgoing:
    """Everything one channel needs to deliver one message to one recipient."""

    message: Message
    rendered: Rendered
    # The group's robot, for robot channels.
    robot: Robot | None = None
    # The recipient's mobile, for SMS channels only.
    phone: str = ""


class PermanentFailure(Exception):
    """Retrying cannot help (bad key, refused signature, malformed request)."""


class TransientFailure(Exception):
    """Worth another try later: timeouts, 5xx, the vendor's rate-limit codes."""


class Channel(Protocol):
    """Delivers one outgoing message; raises PermanentFailure or TransientFailure."""

    # The name in the delivery log, metrics and deliveries.v1.
    name: str
    # Whether a resend after a crash is recognised by the far side (so it may be resent).
    idempotent: bool

    async def send(self, outgoing: Outgoing) -> None:
        """Deliver one message."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
