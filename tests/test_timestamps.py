"""Dates and times as a cadre writes them: no leading zeros, Beijing time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from gridline.timestamps import from_timestamp, to_timestamp, zh_date, zh_time
from tests.helpers import moments


def test_days_and_months_have_no_leading_zero() -> None:
    assert zh_date(date(2026, 1, 5)) == "1月5日"
    assert zh_date(date(2026, 12, 30)) == "12月30日"


def test_a_moment_is_told_in_beijing_time_even_across_midnight() -> None:
    assert zh_time(datetime(2026, 1, 30, 16, 30, tzinfo=UTC)) == "1月31日 00:30"


@given(moments(datetime(1900, 1, 1), datetime(2200, 1, 1)))
def test_a_timestamp_is_the_one_protobuf_makes_and_reads_back(moment: datetime) -> None:
    theirs = Timestamp()
    theirs.FromDatetime(moment)
    ours = to_timestamp(moment)
    assert (ours.seconds, ours.nanos) == (theirs.seconds, theirs.nanos)
    assert from_timestamp(ours) == theirs.ToDatetime(tzinfo=UTC)
    assert from_timestamp(ours).tzinfo is UTC


@given(
    st.one_of(
        st.tuples(st.integers(min_value=-(2**63), max_value=-62_135_596_801), st.just(0)),
        st.tuples(st.integers(min_value=253_402_300_800, max_value=2**63 - 1), st.just(0)),
        st.tuples(st.just(0), st.integers(min_value=-(2**31), max_value=-1)),
        st.tuples(st.just(0), st.integers(min_value=10**9, max_value=2**31 - 1)),
        st.tuples(st.sampled_from([-62_135_596_800, 253_402_300_799]), st.just(999_999_999)),
    )
)
def test_a_timestamp_no_datetime_holds_is_refused_as_protobuf_refuses_it(
    stamp: tuple[int, int],
) -> None:
    theirs = Timestamp(seconds=stamp[0], nanos=stamp[1])
    try:
        expected = theirs.ToDatetime(tzinfo=UTC)
    except ValueError:
        with pytest.raises(ValueError):
            from_timestamp(theirs)
    else:  # the two edges of the range
        assert from_timestamp(theirs) == expected
