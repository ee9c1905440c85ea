"""Converting between aware datetimes and protobuf Timestamps, and dates as people read them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

# Every county the platform serves keeps Beijing time; notices and pages speak in it.
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The Unix epoch, aware: what Timestamps and the links' issue times count from.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a Timestamp may hold, as a datetime does: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_SECONDS_MIN = (datetime.min.replace(tzinfo=UTC) - EPOCH) // timedelta(seconds=1)
_SECONDS_MAX = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(seconds=1)


def zh_date(day: date) -> str:
    """A day as a cadre writes it: `1月30日`, never `01月30日`."""
    return f"{day.month}月{day.day}日"


def zh_time(moment: datetime) -> str:
    """A moment as a cadre writes it, in Beijing time: `1月30日 14:05`."""
    local = moment.astimezone(SHANGHAI)
    return f"{zh_date(local)} {local.hour:02d}:{local.minute:02d}"


# The two conversions below give what protobuf's `FromDatetime` and `ToDatetime(tzinfo=UTC)`
# give, by timedelta arithmetic in C instead of their time tuples: every record converts several.
def to_timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime (a naive one is taken to be in UTC)."""
    since = in_utc(moment) - EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def from_timestamp(stamp: Timestamp) -> datetime:
    """An aware UTC datetime of a protobuf Timestamp (to the microsecond, as protobuf's).

    ValueError, as protobuf's, for a Timestamp no datetime holds (seconds outside years
    1–9999, nanos outside a second): a peer's message may carry anything.
    """
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (_SECONDS_MIN <= seconds <= _SECONDS_MAX and 0 <= nanos < 1_000_000_000):
        raise ValueError(f"Timestamp is not valid: {seconds} s and {nanos} ns")
    return EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def in_utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive one is taken to be in UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)
