"""Converting between aware datetimes and protobuf Timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def to_timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime."""
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    """An aware UTC datetime of a protobuf Timestamp."""
    # Named for the checker: protobuf's runtime is untyped without its stub package.
    moment: datetime = stamp.ToDatetime(tzinfo=UTC)
    return moment


def in_utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive one is taken to be in UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)
