"""Links sent to people in notifications."""

from __future__ import annotations

from datetime import datetime

from gridline.signed_links import signed_query


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
