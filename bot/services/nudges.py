"""A leader's nudge to a cadre with overdue households (from /overdue): at most one per cadre per local
day, whoever presses and however often. The audit log is the record (one row per nudge sent)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler import due
from bot.scheduler.reports import leader_teams, led_team_ids
from bot.store.models import AuditLog, Person

ACTION = "overdue.nudged"


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as an aware [start, end) interval."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, start + timedelta(days=1)


async def nudged_on(session: AsyncSession, cadre_id: int, day: date, tz: ZoneInfo) -> bool:
    """Whether the cadre was nudged already on that local day."""
    start, end = day_bounds(day, tz)
    q = (
        select(AuditLog.id)
        .where(
            AuditLog.action == ACTION,
            AuditLog.entity == "person",
            AuditLog.entity_id == cadre_id,
            AuditLog.at >= start,
            AuditLog.at < end,
        )
        .limit(1)
    )
    return (await session.execute(q)).first() is not None


async def overdue_of(
    session: AsyncSession, leader_id: int, cadre_id: int, today: date, cadence_days: int
) -> list[due.HouseholdDue] | None:
    """The cadre's overdue households, by the /overdue rule; None when the cadre is not in a team the
    leader leads (a forged button)."""
    # The leader's teams are read in the same statement: rows found are in scope by construction.
    rows = await due.overdue_households(
        session, today, cadence_days, team_ids=led_team_ids(leader_id), cadre_id=cadre_id
    )
    if rows:
        return rows
    person = await session.get(Person, cadre_id)  # usually in the session already (the button's handler)
    if person is None or person.team_id is None:
        return None
    return [] if person.team_id in {tid for tid, _name in await leader_teams(session, leader_id)} else None
