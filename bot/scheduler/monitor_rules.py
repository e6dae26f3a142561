"""The `[monitoring]` section of the rules: clocks and closing rules of 防止返贫动态监测 (issue 14).

Every figure here is configurable per province / county; the defaults are the ones local implementation
documents commonly use. The monitoring income line is set by the province per year and is NOT shipped:
with no line for a year, the screening form shows the income without a comparison and a risk cannot be
closed on income (the reason is said).
"""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Monitoring(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # From the first clue to identification (县级确认) at most this many days ...
    identify_days: Annotated[int, Field(ge=1)] = 15
    # ... counted as working days of the county calendar when true (some provinces: 20 working days).
    identify_working_days: bool = False
    accept_working_days: Annotated[int, Field(ge=0)] = 2  # township accepts a self-report
    verify_working_days: Annotated[int, Field(ge=0)] = 2  # home check after acceptance
    step_working_days: Annotated[int, Field(ge=1)] = 3  # any other step (bounded by the identification clock)
    publicity_days: Annotated[int, Field(ge=1)] = 5  # 村内公示, calendar days, at least
    follow_up_days: Annotated[int, Field(ge=1)] = 30  # monthly follow-up visit while monitored
    escalate_after_working_days: Annotated[int, Field(ge=0)] = 2  # overdue this long: the next level
    check_at: time = time(9, 0)
    monthly_day: Annotated[int, Field(ge=1, le=28)] = 1  # the leaders' monthly list
    weekly_weekday: Annotated[int, Field(ge=1, le=7)] = 1  # the township / county weekly summary
    # Closing a risk (风险消除).
    close_income_months: Annotated[int, Field(ge=0)] = 6  # income stable above the line this long
    close_monitored_months: Annotated[int, Field(ge=0)] = 6  # monitored at least this long
    close_min_measures: Annotated[int, Field(ge=0)] = 1
    # With no working-age labour, income alone does not close: one of these lasting measures must be in
    # place (topic ids of ../shared/policy-topics.yaml).
    no_labour_measures: tuple[str, ...] = ("welfare.dibao", "welfare.tekun", "welfare.pension", "welfare.disability")
    # Yearly per-capita net income line (元/人·年) set by the province: {"2027": "..."}; none shipped.
    income_lines: dict[str, Decimal] = {}

    @field_validator("check_at", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        if isinstance(v, str):
            hh, mm = v.split(":")
            return time(int(hh), int(mm))
        return v

    @field_validator("income_lines", mode="before")
    @classmethod
    def _years(cls, v: Any) -> Any:
        out = {}
        for k, line in dict(v or {}).items():
            if not str(k).isdigit() or len(str(k)) != 4:
                raise ValueError(f"income line key must be a year: {k!r}")
            out[str(k)] = line
        return out

    def income_line(self, year: int) -> Decimal | None:
        """The province's line for the year, or None when the county has not set one."""
        return self.income_lines.get(str(year))

    def identify_due(self, start: date, is_working_day: Any) -> date:
        if self.identify_working_days:
            return add_working_days(start, self.identify_days, is_working_day)
        return start + timedelta(days=self.identify_days)


def add_working_days(start: date, n: int, is_working_day: Any) -> date:
    """The date n working days after start (start itself not counted)."""
    d = start
    while n > 0:
        d += timedelta(days=1)
        if is_working_day(d):
            n -= 1
    return d


def months_between(earlier: date, later: date) -> int:
    """Whole months from earlier to later (a month is complete on the same day-of-month)."""
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    if later.day < earlier.day:
        months -= 1
    return max(months, 0)
