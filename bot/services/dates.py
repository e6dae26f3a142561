"""Chinese date input as cadres type it on a phone: 今天 / 昨天 / 前天 / 大前天, 3月5日, 3.5, 2026-03-05."""

from __future__ import annotations

import re
from datetime import date, timedelta

# Relative words, days before today.
RELATIVE = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2, "大前天": 3}

_FULL = re.compile(r"^(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*[日号]?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*[日号]?$")
_DAY_ONLY = re.compile(r"^(\d{1,2})\s*[日号]$")
# Full-width digits and punctuation from Chinese input methods.
_WIDE = str.maketrans("０１２３４５６７８９－．／　", "0123456789-./ ")

# A month-day without a year that would lie this far in the future means last year
# (typing "12月28日" on 3 January).
_LAST_YEAR_AFTER = timedelta(days=31)


def parse_date(text: str, today: date) -> date | None:
    """The date meant by `text`, relative to the local `today`; None when it is not a date.

    A month-day without a year means this year, or last year when this year's date is more than a
    month ahead. The result may be in the future: refusing it (with a reason) is the caller's job.
    """
    s = text.strip().translate(_WIDE).replace(" ", "")
    if not s:
        return None
    if s in RELATIVE:
        return today - timedelta(days=RELATIVE[s])
    try:
        if m := _FULL.match(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _MONTH_DAY.match(s):
            d = date(today.year, int(m[1]), int(m[2]))
            return d.replace(year=today.year - 1) if d - today > _LAST_YEAR_AFTER else d
        if m := _DAY_ONLY.match(s):
            # "5号": the 5th of this month, or of last month if that is still ahead.
            day = int(m[1])
            this_month: date | None
            try:
                this_month = today.replace(day=day)
            except ValueError:
                this_month = None
            if this_month is None or this_month > today:
                prev = today.replace(day=1) - timedelta(days=1)
                return prev.replace(day=day)
            return this_month
    except ValueError:  # 2月30日, 13月1日, 29 Feb in a common year
        return None
    return None
