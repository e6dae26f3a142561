"""Clocks: the real one, and a fixed one tests can move. Everything asks a clock, never datetime.now()."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    tz: ZoneInfo

    def now(self) -> datetime:
        """The current aware UTC time."""
        ...


class SystemClock:
    """Wall-clock time."""

    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and simulations."""

    def __init__(self, at: datetime, tz: str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz)
        self._at = at if at.tzinfo else at.replace(tzinfo=self.tz)

    def now(self) -> datetime:
        return self._at.astimezone(UTC)

    def set(self, at: datetime) -> None:
        self._at = at if at.tzinfo else at.replace(tzinfo=self.tz)

    def advance(self, **kw: float) -> None:
        self._at += timedelta(**kw)


def local_now(clock: Clock) -> datetime:
    """The clock's time in the county's timezone."""
    return clock.now().astimezone(clock.tz)


def local_today(clock: Clock) -> date:
    """Today's date in the county's timezone."""
    return local_now(clock).date()
