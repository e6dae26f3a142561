"""Chinese date input (pure function, no database)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.services.dates import parse_date

TODAY = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", date(2026, 11, 28)),
        ("昨天", date(2026, 11, 27)),
        ("前天", date(2026, 11, 26)),
        ("大前天", date(2026, 11, 25)),
        ("3月5日", date(2026, 3, 5)),
        ("3月5号", date(2026, 3, 5)),
        ("3.5", date(2026, 3, 5)),
        ("３．５", date(2026, 3, 5)),  # full-width, as some input methods type it
        ("2026-03-05", date(2026, 3, 5)),
        ("2026-3-5", date(2026, 3, 5)),
        ("2026年3月5日", date(2026, 3, 5)),
        ("2026/03/05", date(2026, 3, 5)),
        (" 2026 年 3 月 5 日 ", date(2026, 3, 5)),
        ("12月1日", date(2026, 12, 1)),  # a few days ahead: this year (the dialog refuses the future)
        ("20号", date(2026, 11, 20)),
        ("30号", date(2026, 10, 30)),  # not yet this month: last month
        ("2月30日", None),
        ("13月1日", None),
        ("下个月", None),
        ("", None),
        ("3", None),
    ],
)
def test_parse_date(text: str, expected: date | None) -> None:
    assert parse_date(text, TODAY) == expected


def test_month_day_far_ahead_means_last_year() -> None:
    assert parse_date("12月28日", date(2027, 1, 3)) == date(2026, 12, 28)
    assert parse_date("2月29日", date(2027, 1, 3)) is None  # no 29 February in 2027
