"""驻村打卡: at most one check-in per cadre per local day; the ISO week's count against the target."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.services.visits import haversine_m
from bot.store.models import CheckIn, Person, Village


def week_bounds(day: date) -> tuple[date, date]:
    """Monday and Sunday of the ISO week containing day."""
    monday = day - timedelta(days=day.isoweekday() - 1)
    return monday, monday + timedelta(days=6)


async def checkin_on(session: AsyncSession, cadre_id: int, day: date) -> CheckIn | None:
    """The cadre's check-in on that local day, if any."""
    q = select(CheckIn).where(CheckIn.cadre_id == cadre_id, CheckIn.day == day)
    return (await session.execute(q)).scalar_one_or_none()


_WEEK = aliased(CheckIn, name="week")  # built once: stable aliases keep the compiled-statement cache warm


async def checkin_and_week(session: AsyncSession, cadre_id: int, day: date) -> tuple[CheckIn, int] | None:
    """The cadre's check-in on that local day with the week's count (`week_count`) in one statement; None
    when there is no check-in that day (`checkin_on`'s None)."""
    first, last = week_bounds(day)
    n = (
        select(func.count(_WEEK.id))
        .where(_WEEK.cadre_id == cadre_id, _WEEK.day >= first, _WEEK.day <= last)
        .scalar_subquery()
    )
    q = select(CheckIn, n).where(CheckIn.cadre_id == cadre_id, CheckIn.day == day)
    row = (await session.execute(q)).one_or_none()
    return None if row is None else (row[0], int(row[1]))


async def check_in(
    session: AsyncSession, cadre: Person, day: date, now: datetime, lat: float | None, lon: float | None
) -> CheckIn | None:
    """Record today's check-in; None when the cadre already checked in that day."""
    if await checkin_on(session, cadre.id, day) is not None:
        return None
    distance = None
    if lat is not None and lon is not None and cadre.village_id is not None:
        village = await session.get(Village, cadre.village_id)
        if village is not None and village.lat is not None and village.lon is not None:
            distance = haversine_m(lat, lon, village.lat, village.lon)
    row = CheckIn(cadre_id=cadre.id, day=day, at=now, lat=lat, lon=lon, village_id=cadre.village_id,
                  distance_m=distance)
    session.add(row)
    await session.flush()
    return row


async def week_count(session: AsyncSession, cadre_id: int, day: date) -> int:
    """Check-in days in the ISO week containing day."""
    first, last = week_bounds(day)
    q = select(func.count(CheckIn.id)).where(
        CheckIn.cadre_id == cadre_id, CheckIn.day >= first, CheckIn.day <= last
    )
    return int((await session.execute(q)).scalar_one())
