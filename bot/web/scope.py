"""Who sees what on the dashboard: a leader their teams, a township officer the teams of their township
(and those they are the contact of), a county officer the teams of their village's county, an admin the
whole database. Everything outside answers 404."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true, union
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler.reports import leader_teams_select
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
        by_village = select(Household.id).where(Household.village_id.in_(self.village_ids or ()))
        # One id set (a UNION), not `village_id IN … OR id IN …`: with the OR the planner walks the county's
        # households in list order and filters each; with the set it reads the scope's few hundred rows.
        return Household.id.in_(union(by_village, paired))

    def teams_for_queries(self) -> list[int | None]:
        """The team ids to run per-team computations over (None once: the whole county)."""
        return [None] if self.team_ids is None else list(self.team_ids)


async def scope_for(session: AsyncSession, person: Person) -> Scope:
    """One statement (every request asks): the teams the person leads, and for a township officer also the
    teams they are the contact of and those of their own township, with the teams' villages."""
    role = Role(person.role)
    if role is Role.ADMIN:
        return Scope(person.id, role, None, None)
    also: ColumnElement[bool] | None = None
    if role is Role.COUNTY and person.village_id is not None:
        # The teams of their village's county (the monitoring workflow's county steps).
        county = select(Village.county).where(Village.id == person.village_id).scalar_subquery()
        also = Team.village_id.in_(select(Village.id).where(Village.county == county, Village.county != ""))
    if role is Role.TOWNSHIP:
        contact: ColumnElement[bool] = Team.township_contact_id == person.id
        also = contact
        if person.village_id is not None:
            township = select(Village.township).where(Village.id == person.village_id).scalar_subquery()
            same = select(Village.id).where(Village.township == township, Village.township != "")
            also = or_(contact, Team.village_id.in_(same))
    rows = (await session.execute(leader_teams_select(person.id, Team.id, Team.village_id, also=also))).all()
    teams = tuple(sorted({tid for tid, _ in rows}))
    villages = tuple(v for _, v in rows if v)
    return Scope(person.id, role, teams, villages)
