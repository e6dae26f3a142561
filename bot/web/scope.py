"""Who sees what on the dashboard: a leader their teams, a township officer the teams of their township
(and those they are the contact of), a county officer the teams of their village's county, an admin the
whole database. Everything outside answers 404."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler.reports import leader_teams
from bot.store.enums import Role
from bot.store.models import Household, Pairing, Person, Team, Village


@dataclass(frozen=True)
class Scope:
    person_id: int
    role: Role
    team_ids: tuple[int, ...] | None  # None: every team (the county)
    village_ids: tuple[int, ...] | None

    @property
    def county(self) -> bool:
        return self.team_ids is None

    def team_filter(self, column: Any) -> Any:
        return true() if self.team_ids is None else column.in_(self.team_ids) if self.team_ids else false()

    def households(self) -> Any:
        """A WHERE clause: the household is in the scope (by village, or currently paired to a team cadre)."""
        if self.team_ids is None:
            return true()
        paired = (
            select(Pairing.household_id)
            .join(Person, Person.id == Pairing.cadre_id)
            .where(Pairing.end_date.is_(None), Person.team_id.in_(self.team_ids))
        )
        by_village = Household.village_id.in_(self.village_ids or ())
        return or_(by_village, Household.id.in_(paired))

    def teams_for_queries(self) -> list[int | None]:
        """The team ids to run per-team computations over (None once: the whole county)."""
        return [None] if self.team_ids is None else list(self.team_ids)


async def scope_for(session: AsyncSession, person: Person) -> Scope:
    role = Role(person.role)
    if role is Role.ADMIN:
        return Scope(person.id, role, None, None)
    ids: set[int] = {tid for tid, _ in await leader_teams(session, person.id)}
    if role is Role.COUNTY:  # the teams of their village's county (the monitoring workflow's county steps)
        if person.village_id is not None:
            county = select(Village.county).where(Village.id == person.village_id).scalar_subquery()
            same = select(Team.id).join(Village, Village.id == Team.village_id).where(
                Village.county == county, Village.county != "")
            ids |= set((await session.execute(same)).scalars())
    if role is Role.TOWNSHIP:
        ids |= set((await session.execute(select(Team.id).where(Team.township_contact_id == person.id))).scalars())
        if person.village_id is not None:
            township = select(Village.township).where(Village.id == person.village_id).scalar_subquery()
            same = select(Team.id).join(Village, Village.id == Team.village_id).where(
                Village.township == township, Village.township != ""
            )
            ids |= set((await session.execute(same)).scalars())
    teams = tuple(sorted(ids))
    villages = tuple(
        v for v in (await session.execute(select(Team.village_id).where(Team.id.in_(teams)))).scalars() if v
    )
    return Scope(person.id, role, teams, villages)
