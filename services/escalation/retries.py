"""When a timer that could not be fired is tried again: the deadlines', the follow-up's and the
visit rounds' alike."""

from __future__ import annotations

from datetime import datetime, timedelta

# A step that could not be fired is tried again after as long as it has been overdue, within
# these bounds: the tries space out, doubling, without a column to count them.
RETRY_MIN = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)


def retry_at(due_at: datetime | None, moment: datetime) -> datetime:
    """When a step due at `due_at` that could not be fired at `moment` is tried again."""
    if due_at is None:
        return moment + RETRY_MAX
    return moment + min(max(moment - due_at, RETRY_MIN), RETRY_MAX)
