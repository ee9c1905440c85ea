"""Links sent to people in notifications."""

from __future__ import annotations


def task_link(base_url: str, task_id: str) -> str:
    """Where the holder of a task looks at it and acts on it."""
    return f"{base_url.rstrip('/')}/v1/tasks/{task_id}"
