"""Dates and times as a cadre writes them: no leading zeros, Beijing time."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from gridline.timestamps import SHANGHAI, from_timestamp, to_timestamp, zh_date, zh_time


def test_days_and_months_have_no_leading_zero() -> None:
    assert zh_date(date(2026, 1, 5)) == "1月5日"
    assert zh_date(date(2026, 12, 30)) == "12月30日"


def test_a_moment_is_told_in_beijing_time_even_across_midnight() -> None:
    assert zh_time(datetime(2026, 1, 30, 16, 30, tzinfo=UTC)) == "1月31日 00:30"


_MOMENTS = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(_MOMENTS, st.sampled_from([UTC, SHANGHAI, None]))
def test_a_timestamp_is_the_one_protobuf_makes_and_reads_back(
    moment: datetime, zone: tzinfo | None
) -> None:
    moment = moment.replace(tzinfo=None) if zone is None else moment.astimezone(zone)
    theirs = Timestamp()
    theirs.FromDatetime(moment)
    ours = to_timestamp(moment)
    assert (ours.seconds, ours.nanos) == (theirs.seconds, theirs.nanos)
    assert from_timestamp(ours) == theirs.ToDatetime(tzinfo=UTC)
    assert from_timestamp(ours).tzinfo is UTC
