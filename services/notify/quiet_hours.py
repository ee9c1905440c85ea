"""Quiet hours: which notices wait for an office's morning, and until when.

Only a notice its sender marked `deferrable` may wait (gridline.contracts.notices): a low-risk
case's escalation, a daily roll-up. Notify holds it when its recipient's level has quiet hours
and the moment falls inside them, and sends it at their end in one digest with the others held
for that group. Everything else goes at once, day and night; a broken channel or a robot test is
never held, whoever marked it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from gridline.contracts.enums import CHAIN_LEVELS
from gridline.contracts.v1 import events_pb2
from gridline.settings import Settings
from gridline.timestamps import SHANGHAI

NEVER_HELD = frozenset(
    {events_pb2.NOTIFICATION_KIND_CHANNEL_BROKEN, events_pb2.NOTIFICATION_KIND_TEST}
)


@dataclass(frozen=True)
class QuietHours:
    """A daily window in Beijing time, from `start` up to `end` (across midnight when `end`
    comes first), kept by the groups of `levels`. `start == end` is no window at all."""

    start: time
    end: time
    levels: frozenset[int]

    @classmethod
    def from_settings(cls, settings: Settings) -> QuietHours:
        """The quiet hours of the settings; ValueError names an unknown level."""
        names = [name.strip() for name in settings.notify_quiet_levels.split(",") if name.strip()]
        unknown = [name for name in names if name not in CHAIN_LEVELS]
        if unknown:
            raise ValueError(
                f"GRIDLINE_NOTIFY_QUIET_LEVELS: unknown level {', '.join(unknown)}; "
                f"known: {', '.join(CHAIN_LEVELS)}"
            )
        return cls(
            settings.notify_quiet_hours_start,
            settings.notify_quiet_hours_end,
            frozenset(level for name, level in CHAIN_LEVELS.items() if name in names),
        )

    def ends(self, at: datetime) -> datetime | None:
        """The end of the quiet hours `at` falls in (UTC), or None when it falls outside."""
        if self.start == self.end:
            return None
        local = at.astimezone(SHANGHAI)
        clock, day = local.time(), local.date()
        if self.start < self.end:
            inside = self.start <= clock < self.end
        else:
            inside = clock >= self.start or clock < self.end
            if clock >= self.start:
                day += timedelta(days=1)
        return datetime.combine(day, self.end, SHANGHAI).astimezone(UTC) if inside else None

    def may_hold(self, notice: events_pb2.Notification) -> bool:
        """Whether `notice` is held at some hour of the day."""
        return (
            self.start != self.end
            and notice.deferrable
            and notice.kind not in NEVER_HELD
            and notice.recipient.level in self.levels
        )

    def held_until(self, notice: events_pb2.Notification, at: datetime) -> datetime | None:
        """Until when `notice`, arriving `at`, is held; None: it goes at once."""
        return self.ends(at) if self.may_hold(notice) else None


# No window and nobody keeping one: every notice goes at once.
NO_QUIET_HOURS = QuietHours(time(), time(), frozenset())
