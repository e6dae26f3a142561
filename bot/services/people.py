"""Who is responsible for whom: current pairings, team leaders, scope checks."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.enums import Role
from bot.store.models import Household, Pairing, Person, Team

_CADRE_FOR_HOUSEHOLD = (
    select(Person)
    .join(Pairing, Pairing.cadre_id == Person.id)
    .where(Pairing.household_id == bindparam("hid"), Pairing.end_date.is_(None), Person.active.is_(True))
    .order_by(Pairing.start_date.desc())
    .limit(1)
)
_PAIRED_NOW = (
    select(Pairing.id)
    .where(Pairing.cadre_id == bindparam("cadre_id"), Pairing.household_id == bindparam("hid"),
           Pairing.end_date.is_(None))
    .limit(1)
)


async def cadre_for_household(session: AsyncSession, household_id: int) -> Person | None:
    """The cadre currently paired with the household, if any."""
    return (await session.execute(_CADRE_FOR_HOUSEHOLD, {"hid": household_id})).scalar_one_or_none()


async def leader_for_village(session: AsyncSession, village_id: int) -> Person | None:
    """The leader of the work team stationed in the village."""
    q = select(Person).join(Team, Team.leader_id == Person.id).where(Team.village_id == village_id).limit(1)
    return (await session.execute(q)).scalar_one_or_none()


async def team_leader(session: AsyncSession, person: Person) -> Person | None:
    """The leader of the person's work team."""
    if person.team_id is None:
        return None
    team = await session.get(Team, person.team_id)
    if team is None or team.leader_id is None:
        return None
    return await session.get(Person, team.leader_id)


async def can_see_household(
    session: AsyncSession, person: Person | None, household: Household, *, paired: bool | None = None
) -> bool:
    """A cadre sees their currently paired households; a leader their team's; admins everything.
    `paired`: whether the person is currently paired with the household, when the caller read that already
    (households.file_head's `since`): a cadre's answer then needs no query."""
    if person is None or not person.active:
        return False
    role = Role(person.role)
    if role is Role.ADMIN:
        return True
    if role is Role.CADRE:
        if paired is not None:
            return paired
        params = {"cadre_id": person.id, "hid": household.id}
        return (await session.execute(_PAIRED_NOW, params)).first() is not None
    if role in (Role.LEADER, Role.TOWNSHIP):
        # The household is paired (now) with someone in a team the person leads or contacts for.
        q = (
            select(Pairing.id)
            .join(Person, Person.id == Pairing.cadre_id)
            .join(Team, Team.id == Person.team_id)
            .where(
                Pairing.household_id == household.id,
                Pairing.end_date.is_(None),
                (Team.leader_id == person.id) | (Team.township_contact_id == person.id),
            )
        )
        if (await session.execute(q.limit(1))).first() is not None:
            return True
        team_village = select(Team.village_id).where(
            (Team.leader_id == person.id) | (Team.township_contact_id == person.id)
        )
        q2 = select(Household.id).where(Household.id == household.id, Household.village_id.in_(team_village))
        return (await session.execute(q2)).first() is not None
    return False
