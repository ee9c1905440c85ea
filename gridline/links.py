"""Links sent to people in notifications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gridline.settings import Settings
from gridline.signed_links import signed_query, verify


def task_link(
    base_url: str, task_id: str, *, key: bytes = b"", expires_at: datetime | None = None
) -> str:
    """Where the holder of a task looks at it and acts on it.

    With a key and an expiry: escalation's signed task page, valid until `expires_at`.
    Without them: the task's API resource (which needs no signature to read).
    """
    if key and expires_at is not None:
        return f"{base_url.rstrip('/')}/t/{task_id}?{signed_query(key, task_id, expires_at)}"
    return f"{base_url.rstrip('/')}/v1/tasks/{task_id}"


@dataclass(frozen=True)
class PageLinks:
    """Makes and checks the signed, expiring links to escalation's task page, with one key."""

    base_url: str
    key: bytes
    ttl: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> PageLinks:
        """The links of a deployment's settings."""
        return cls(
            settings.public_base_url,
            settings.task_link_key.get_secret_value().encode(),
            timedelta(seconds=settings.task_link_ttl_seconds),
        )

    def link(self, task_id: str, issued_at: datetime) -> str:
        """A link to the task's page, valid for the configured time from `issued_at`."""
        return task_link(self.base_url, task_id, key=self.key, expires_at=issued_at + self.ttl)

    def check(self, task_id: str, expires: str, signature: str, now: datetime) -> datetime:
        """The link's expiry when genuine and current; LinkRefused otherwise."""
        return verify(self.key, task_id, expires, signature, now)
