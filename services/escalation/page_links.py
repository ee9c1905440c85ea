"""The signed, expiring links to escalation's task page, made and checked with one key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gridline.links import task_link
from gridline.settings import Settings
from gridline.signed_links import verify


@dataclass(frozen=True)
class PageLinks:
    """Makes and checks task-page links."""

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
