"""Reminder rules: configuration, not code. The shipped TOML default merged with a county override."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.store.enums import VisitKind

DEFAULT_RULES_FILE = Path(__file__).resolve().parent / "rules.default.toml"


def _parse_hhmm(v: Any) -> time:
    if isinstance(v, time):
        return v
    hh, mm = str(v).split(":")
    return time(int(hh), int(mm))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(_Model):
    start: time = time(21, 0)
    end: time = time(7, 30)

    _hhmm = field_validator("start", "end", mode="before")(_parse_hhmm)

    def contains(self, t: time) -> bool:
        """Whether local wall-clock time t falls in the quiet period (which may wrap midnight)."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


class VillageDays(_Model):
    target: Annotated[int, Field(ge=0, le=7)] = 2
    plan_weekday: Annotated[int, Field(ge=1, le=7)] = 1
    plan_at: time = time(8, 0)
    nudge_weekday: Annotated[int, Field(ge=1, le=7)] = 4
    nudge_at: time = time(9, 0)
    shortfall_weekday: Annotated[int, Field(ge=1, le=7)] = 1
    shortfall_at: time = time(8, 30)
    # A check-in located farther than this from the village's recorded point still counts, but is marked
    # for the leader (GPS can be off; a cadre checking in from town should not go unnoticed).
    far_meters: Annotated[int, Field(ge=100)] = 3000

    _hhmm = field_validator("plan_at", "nudge_at", "shortfall_at", mode="before")(_parse_hhmm)


class Visits(_Model):
    cadence_days: Annotated[int, Field(ge=1)] = 30
    cadre_reminder_at: time = time(8, 0)
    leader_alert_at: time = time(8, 30)
    require_seasonal_kind: bool = False

    _hhmm = field_validator("cadre_reminder_at", "leader_alert_at", mode="before")(_parse_hhmm)


class Window(_Model):
    """A seasonal window as month-day bounds, both included; may not wrap the new year."""

    start: tuple[int, int]
    end: tuple[int, int]

    @field_validator("start", "end", mode="before")
    @classmethod
    def _md(cls, v: Any) -> tuple[int, int]:
        if isinstance(v, str):
            mm, dd = v.split("-")
            v = (int(mm), int(dd))
        m, d = v
        date(2024, m, d)  # validates (2024 is a leap year, so 02-29 is allowed)
        return (int(m), int(d))

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError("a seasonal window must end after it starts, within one year")
        return self

    def dates(self, year: int) -> tuple[date, date]:
        """The window's first and last day in year (02-29 becomes 02-28 in common years)."""
        return _md_date(year, self.start), _md_date(year, self.end)


def _md_date(year: int, md: tuple[int, int]) -> date:
    m, d = md
    try:
        return date(year, m, d)
    except ValueError:
        return date(year, m, d - 1)


class Seasons(_Model):
    open_at: time = time(8, 0)
    nudge_at: time = time(9, 0)
    close_at: time = time(8, 30)
    spring: Window = Window(start=(3, 10), end=(4, 30))
    summer: Window = Window(start=(5, 25), end=(6, 30))
    autumn: Window = Window(start=(9, 20), end=(10, 31))

    _hhmm = field_validator("open_at", "nudge_at", "close_at", mode="before")(_parse_hhmm)

    def windows(self) -> dict[str, Window]:
        return {"spring": self.spring, "summer": self.summer, "autumn": self.autumn}


def season_for(day: date, windows: dict[VisitKind, Window]) -> tuple[VisitKind, date, date]:
    """The seasonal window open on day, or else the last one that opened before it, with its first and
    last day (the rules' month-day bounds in that year). (Used by the monthly report, the dashboard's
    figures and the web: one definition.)"""
    best: tuple[VisitKind, date, date] | None = None
    for year in (day.year, day.year - 1):
        for kind, window in windows.items():
            first, last = window.dates(year)
            if first <= day and (best is None or first > best[1]):
                best = (kind, first, last)
    if best is None:  # no windows at all: an empty span
        kind = next(iter(windows), VisitKind.SPRING)
        return kind, day, day - timedelta(days=1)
    return best


class Calendar(_Model):
    """The county's official calendar: holidays (放假) and the weekend days worked instead (调休上班).

    Working days (for difficulty deadlines) are Monday..Friday plus `workdays`, minus `holidays`; on a
    holiday no reminder or report goes out (urgent difficulty alerts still do).
    """

    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()

    @field_validator("holidays", "workdays", mode="before")
    @classmethod
    def _ranges(cls, v: Any) -> Any:
        """Each entry a date "YYYY-MM-DD" or a range "YYYY-MM-DD..YYYY-MM-DD" (both ends included)."""
        out: list[Any] = []
        for item in v or ():
            text = str(item)
            if ".." in text:
                first, last = (date.fromisoformat(x.strip()) for x in text.split("..", 1))
                if last < first:
                    raise ValueError(f"range ends before it starts: {text}")
                out.extend(first + timedelta(days=i) for i in range((last - first).days + 1))
            else:
                out.append(item)
        return out

    def is_holiday(self, d: date) -> bool:
        return d in self.holidays

    def is_working_day(self, d: date) -> bool:
        return (d.isoweekday() <= 5 or d in self.workdays) and d not in self.holidays

    def add_working_days(self, start: date, n: int) -> date:
        """The date n working days after start (start itself not counted)."""
        d = start
        while n > 0:
            d += timedelta(days=1)
            if self.is_working_day(d):
                n -= 1
        return d


class Difficulties(_Model):
    ack_working_days: Annotated[int, Field(ge=0)] = 2
    decide_working_days: Annotated[int, Field(ge=0)] = 20
    check_at: time = time(9, 0)
    holidays: tuple[date, ...] = ()  # older place for calendar.holidays; merged into it on load

    _hhmm = field_validator("check_at", mode="before")(_parse_hhmm)


class Cases(_Model):
    """Deadlines of villagers' cases (bot/services/cases.py), in working days like difficulties."""

    first_reply_working_days: Annotated[int, Field(ge=0)] = 3
    resolve_working_days: Annotated[int, Field(ge=0)] = 20
    check_at: time = time(9, 0)

    _hhmm = field_validator("check_at", mode="before")(_parse_hhmm)


class Digest(_Model):
    weekday: Annotated[int, Field(ge=1, le=7)] = 1
    at: time = time(8, 30)

    _hhmm = field_validator("at", mode="before")(_parse_hhmm)


from bot.scheduler.monitor_rules import Monitoring  # noqa: E402  (its own module: issue 14)


class Rules(_Model):
    """Everything the scheduler needs to know about what is due when, for one county."""

    timezone: str = "Asia/Shanghai"
    quiet_hours: QuietHours = QuietHours()
    village_days: VillageDays = VillageDays()
    visits: Visits = Visits()
    seasons: Seasons = Seasons()
    difficulties: Difficulties = Difficulties()
    cases: Cases = Cases()
    digest: Digest = Digest()
    calendar: Calendar = Calendar()
    monitoring: Monitoring = Monitoring()

    @model_validator(mode="after")
    def _merge_old_holidays(self) -> Rules:
        """A county file from before [calendar] listed holidays under [difficulties]: they still count."""
        extra = [d for d in self.difficulties.holidays if d not in self.calendar.holidays]
        if extra:
            merged = Calendar(holidays=(*self.calendar.holidays, *extra), workdays=self.calendar.workdays)
            object.__setattr__(self, "calendar", merged)
        return self

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        ZoneInfo(v)  # raises for an unknown zone
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_send_time(self, at: datetime) -> datetime:
        """The earliest moment at or after `at` (aware) outside quiet hours, as aware UTC."""
        local = at.astimezone(self.tz)
        if not self.quiet_hours.contains(local.time().replace(tzinfo=None)):
            return at
        end = self.quiet_hours.end
        candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate += timedelta(days=1)
        # Built from wall-clock fields, so re-attach the zone to get the right offset on that day.
        candidate = datetime.combine(candidate.date(), end, tzinfo=self.tz)
        return candidate.astimezone(at.tzinfo)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_rules(override: Path | None = None, *, timezone: str | None = None) -> Rules:
    """The shipped defaults merged with a county's override file (keys it omits keep their default).

    `timezone` (Settings.timezone) applies when the override does not name one itself.
    """
    with DEFAULT_RULES_FILE.open("rb") as f:
        data = tomllib.load(f)
    if timezone:
        data["timezone"] = timezone
    if override is not None:
        with Path(override).open("rb") as f:
            data = _merge(data, tomllib.load(f))
    return Rules.model_validate(data)
