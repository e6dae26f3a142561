"""问题台账: difficulties reported by cadres and handled by the team leader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.media import photo_row
from bot.services.privacy import stored_text
from bot.store.enums import DifficultyCategory, DifficultyStatus, Role, Urgency
from bot.store.models import Difficulty, Household, Person, Photo, Team


@dataclass
class DifficultyInput:
    """What the cadre entered."""

    household_id: int | None  # None: the whole village
    category: str
    description: str
    urgency: str
    photos: list[dict[str, Any]]


async def report(
    session: AsyncSession, idem_key: str, reporter: Person, d: DifficultyInput, now: datetime
) -> tuple[Difficulty, bool]:
    """Put the difficulty in the ledger unless this idempotency key was saved already."""
    existing = (
        await session.execute(select(Difficulty).where(Difficulty.idem_key == idem_key))
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    village_id = reporter.village_id
    if d.household_id is not None:
        household = await session.get(Household, d.household_id)
        village_id = household.village_id if household else village_id
    if village_id is None and reporter.team_id is not None:
        team = await session.get(Team, reporter.team_id)
        village_id = team.village_id if team else None
    row = Difficulty(
        idem_key=idem_key,
        reporter_id=reporter.id,
        team_id=reporter.team_id,
        household_id=d.household_id,
        village_id=village_id,
        category=DifficultyCategory(d.category).value,
        description=stored_text(d.description),
        urgency=Urgency(d.urgency).value,
        status=DifficultyStatus.OPEN.value,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    for info in d.photos:
        session.add(photo_row(info, now, difficulty_id=row.id))
    return row, True


async def team_managers(session: AsyncSession, team_id: int | None) -> list[Person]:
    """Who handles a team's difficulties first: the team leader."""
    if team_id is None:
        return []
    team = await session.get(Team, team_id)
    if team is None or team.leader_id is None:
        return []
    leader = await session.get(Person, team.leader_id)
    return [leader] if leader is not None and leader.active else []


async def can_manage(session: AsyncSession, person: Person | None, d: Difficulty) -> bool:
    """The team's leader or township contact (and admins) may acknowledge, assign and resolve."""
    if person is None or not person.active:
        return False
    role = Role(person.role)
    if role is Role.ADMIN:
        return True
    if role not in (Role.LEADER, Role.TOWNSHIP) or d.team_id is None:
        return False
    team = await session.get(Team, d.team_id)
    return team is not None and person.id in (team.leader_id, team.township_contact_id)


async def team_members(session: AsyncSession, team_id: int | None) -> list[Person]:
    """Active people of the team a difficulty may be assigned to."""
    if team_id is None:
        return []
    q = (
        select(Person)
        .where(Person.team_id == team_id, Person.active.is_(True))
        .order_by(Person.name, Person.id)
    )
    return list((await session.execute(q)).scalars())


def acknowledge(d: Difficulty, now: datetime) -> bool:
    """Mark as seen by the leader; False when it was already past that."""
    if d.status != DifficultyStatus.OPEN.value:
        return False
    d.status = DifficultyStatus.ACKNOWLEDGED.value
    d.acknowledged_at = now
    return True


def assign(d: Difficulty, person: Person, now: datetime) -> bool:
    """Give it to a team member; False when already resolved."""
    if d.status == DifficultyStatus.RESOLVED.value:
        return False
    d.status = DifficultyStatus.ASSIGNED.value
    d.assigned_to_id = person.id
    d.acknowledged_at = d.acknowledged_at or now
    return True


def resolve(d: Difficulty, note: str, now: datetime) -> bool:
    """Close it with a note; False when already resolved."""
    if d.status == DifficultyStatus.RESOLVED.value:
        return False
    d.status = DifficultyStatus.RESOLVED.value
    d.resolution_note = stored_text(note)
    d.resolved_at = now
    d.acknowledged_at = d.acknowledged_at or now
    return True


def _in_scope(q: Any, person: Person) -> Any:
    """Only difficulties of the teams the person leads or looks after (all for admins)."""
    if Role(person.role) is Role.ADMIN:
        return q
    teams = select(Team.id).where(or_(Team.leader_id == person.id, Team.township_contact_id == person.id))
    return q.where(Difficulty.team_id.in_(teams))


async def resolved_for(
    session: AsyncSession, person: Person, offset: int = 0, limit: int = 10
) -> tuple[list[Difficulty], int]:
    """A page of the resolved history (most recently resolved first) and how many there are in all."""
    done = Difficulty.status == DifficultyStatus.RESOLVED.value
    total = (await session.execute(_in_scope(select(func.count(Difficulty.id)).where(done), person))).scalar_one()
    q = _in_scope(select(Difficulty).where(done), person)
    q = q.order_by(Difficulty.resolved_at.desc(), Difficulty.id.desc()).offset(offset).limit(limit)
    return list((await session.execute(q)).scalars()), int(total)


async def first_photo(session: AsyncSession, difficulty_id: int) -> Photo | None:
    """The photo the reporter attached, if any."""
    q = select(Photo).where(Photo.difficulty_id == difficulty_id).order_by(Photo.id).limit(1)
    return (await session.execute(q)).scalar_one_or_none()


async def open_for(session: AsyncSession, person: Person, limit: int = 50) -> list[Difficulty]:
    """Unresolved difficulties of the teams the person leads (all for admins), most urgent and oldest first."""
    q = select(Difficulty).where(Difficulty.status != DifficultyStatus.RESOLVED.value)
    if Role(person.role) is not Role.ADMIN:
        teams = select(Team.id).where(or_(Team.leader_id == person.id, Team.township_contact_id == person.id))
        q = q.where(Difficulty.team_id.in_(teams))
    urgency_rank = {"high": 0, "normal": 1, "low": 2}
    rows = list(
        (await session.execute(q.order_by(Difficulty.created_at, Difficulty.id).limit(limit))).scalars()
    )
    rows.sort(key=lambda d: (urgency_rank.get(d.urgency, 1), d.created_at, d.id))
    return rows
