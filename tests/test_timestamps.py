"""Dates and times as a cadre writes them: no leading zeros, Beijing time."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gridline.timestamps import zh_date, zh_time


def test_days_and_months_have_no_leading_zero() -> None:
    assert zh_date(date(2026, 1, 5)) == "1月5日"
    assert zh_date(date(2026, 12, 30)) == "12月30日"


def test_a_moment_is_told_in_beijing_time_even_across_midnight() -> None:
    assert zh_time(datetime(2026, 1, 30, 16, 30, tzinfo=UTC)) == "1月31日 00:30"
