"""我的帮扶户: current pairings with visit and difficulty status, the household file, name search."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from bot.scheduler.rules import Rules
from bot.services.visits import current_season
from bot.store.enums import DifficultyStatus, Role
from bot.store.models import (
    Account,
    Difficulty,
    Household,
    HouseholdMember,
    Pairing,
    Person,
    Team,
    Village,
    Visit,
)


@dataclass(frozen=True, slots=True)
class HouseholdRow:
    """One current pairing as shown in the list."""

    household_id: int
    code: str
    head_name: str
    cadre_id: int
    cadre_name: str
    pairing_start: date
    last_visit: date | None
    season_done: bool | None  # None outside a seasonal window
    open_difficulties: int
    group_no: int | None = None

    def as_own(self) -> OwnHousehold:
        return OwnHousehold(self.household_id, self.code, self.head_name, self.group_no, self.pairing_start)

    def days_since(self, today: date) -> int | None:
        return (today - self.last_visit).days if self.last_visit else None

    def days_overdue(self, today: date, cadence_days: int) -> int:
        """Days past the visit cadence, by the rule /overdue and the reminders use
        (bot.scheduler.due.overdue_households): due `cadence_days` after the last visit or the pairing's
        start, whichever is later; overdue (> 0) from the day after. 0 or less: not overdue."""
        anchor = self.pairing_start if self.last_visit is None or self.last_visit < self.pairing_start else (
            self.last_visit
        )
        return (today - anchor).days - cadence_days


def _open_difficulty() -> Any:
    return Difficulty.status != DifficultyStatus.RESOLVED.value


@functools.lru_cache(maxsize=16)
def _pairing_rows_statement(seasonal: bool, seasonal_kind: bool, by: str) -> Any:
    """The pairing list statement for one shape (in season or not, kind required or not, filtered by
    cadres, teams or nothing), built once with bound parameters: building it costs more than running it."""
    last = (
        select(func.max(Visit.visit_date))
        .where(Visit.household_id == Pairing.household_id, Visit.visit_date <= bindparam("today"))
        .correlate(Pairing)
        .scalar_subquery()
    )
    open_count = (
        select(func.count(Difficulty.id))
        .where(Difficulty.household_id == Pairing.household_id, _open_difficulty())
        .correlate(Pairing)
        .scalar_subquery()
    )
    cols: list[Any] = [
        Pairing.household_id,
        Household.code,
        Household.head_name,
        Pairing.cadre_id,
        Person.name,
        Pairing.start_date,
        last.label("last_visit"),
        open_count.label("open_count"),
        Household.group_no,
    ]
    if seasonal:
        cond = [
            Visit.household_id == Pairing.household_id,
            Visit.visit_date >= bindparam("season_start"),
            Visit.visit_date <= bindparam("season_end"),
        ]
        if seasonal_kind:
            cond.append(Visit.kind == bindparam("season_kind"))
        cols.append(exists(select(Visit.id).where(and_(*cond))).correlate(Pairing).label("season_done"))
    q = (
        select(*cols)
        .join(Household, Household.id == Pairing.household_id)
        .join(Person, Person.id == Pairing.cadre_id)
        .where(Pairing.end_date.is_(None))
    )
    if by == "cadres":
        q = q.where(Pairing.cadre_id.in_(bindparam("ids", expanding=True)))
    elif by == "teams":
        q = q.where(Person.team_id.in_(bindparam("ids", expanding=True)))
    return q


async def pairing_rows(
    session: AsyncSession,
    today: date,
    rules: Rules,
    *,
    cadre_ids: Sequence[int] | None = None,
    team_ids: Sequence[int] | None = None,
) -> list[HouseholdRow]:
    """Current pairings (of some cadres, or of some teams' cadres; all when neither is given) with
    last visit, this season's visit and open difficulties, in one statement. Most overdue first."""
    season = current_season(rules, today)
    by = "cadres" if cadre_ids is not None else "teams" if team_ids is not None else "all"
    seasonal_kind = season is not None and rules.visits.require_seasonal_kind
    q = _pairing_rows_statement(season is not None, seasonal_kind, by)
    params: dict[str, Any] = {"today": today}
    if season is not None:
        params.update(season_start=season.start, season_end=min(season.end, today))
        if seasonal_kind:
            params["season_kind"] = season.name
    if cadre_ids is not None:
        params["ids"] = list(cadre_ids)
    elif team_ids is not None:
        params["ids"] = list(team_ids)
    rows = (await session.execute(q, params)).all()
    out = [
        HouseholdRow(
            household_id=r[0],
            code=r[1],
            head_name=r[2],
            cadre_id=r[3],
            cadre_name=r[4],
            pairing_start=r[5],
            last_visit=r[6],
            open_difficulties=int(r[7] or 0),
            group_no=r[8],
            season_done=bool(r[9]) if season is not None else None,
        )
        for r in rows
    ]
    # Grouped by cadre; inside, never-visited and longest-ago first, so the list starts with the work.
    out.sort(key=lambda r: (r.cadre_name, r.cadre_id, r.last_visit or date.min, r.head_name, r.household_id))
    return out


async def led_team_ids(session: AsyncSession, person: Person) -> list[int]:
    """Teams a leader leads or a township contact looks after."""
    q = select(Team.id).where(or_(Team.leader_id == person.id, Team.township_contact_id == person.id))
    return [int(x) for x in (await session.execute(q)).scalars()]


async def rows_for(session: AsyncSession, person: Person, today: date, rules: Rules) -> list[HouseholdRow]:
    """What /households shows the person: a cadre their own pairings; a leader the whole team (and
    their own pairings); an admin everyone."""
    role = Role(person.role)
    if role is Role.ADMIN:
        return await pairing_rows(session, today, rules)
    if role in (Role.LEADER, Role.TOWNSHIP):
        teams = await led_team_ids(session, person)
        rows = await pairing_rows(session, today, rules, team_ids=teams) if teams else []
        if not any(r.cadre_id == person.id for r in rows):
            rows = [*rows, *await pairing_rows(session, today, rules, cadre_ids=[person.id])]
        return rows
    return await pairing_rows(session, today, rules, cadre_ids=[person.id])


@dataclass(frozen=True, slots=True)
class OwnHousehold:
    """What a household picker needs of a cadre's household: no full ORM object per button. `since`: when
    the cadre's current pairing with it began (the earliest, should there be two: as
    bot.services.visits.pairing_start answers), read with it so that a pick costs no second query."""

    id: int
    code: str
    head_name: str
    group_no: int | None
    since: date


_OWN = (
    select(Household.id, Household.code, Household.head_name, Household.group_no, Pairing.start_date)
    .join(Pairing, Pairing.household_id == Household.id)
    .where(Pairing.cadre_id == bindparam("cadre_id"), Pairing.end_date.is_(None))
    .order_by(Household.head_name, Household.id)
)


def _earliest(households: list[OwnHousehold]) -> list[OwnHousehold]:
    """Each household's `since` made its earliest current pairing's start (two current pairings of one
    cadre with one household are not prevented); the list itself (order, repeats) is left as it was."""
    first: dict[int, date] = {}
    for h in households:
        if h.id not in first or h.since < first[h.id]:
            first[h.id] = h.since
    if len(first) == len(households):
        return households
    return [h if h.since == first[h.id] else OwnHousehold(h.id, h.code, h.head_name, h.group_no, first[h.id])
            for h in households]


async def own_households(session: AsyncSession, cadre_id: int) -> list[OwnHousehold]:
    """Households currently paired with the cadre, by head name (one indexed query, built once)."""
    return _earliest([OwnHousehold(*r) for r in (await session.execute(_OWN, {"cadre_id": cadre_id})).all()])


def own_from_rows(rows: Sequence[HouseholdRow]) -> list[OwnHousehold]:
    """`own_households` from a cadre's `pairing_rows` (the same pairings, read with their status), without a
    query of its own. By head name in Python's order, which can differ from the database collation's
    (own_households'): the pickers use the order nowhere a person sees it (one match, or a set of ids)."""
    own = _earliest([r.as_own() for r in rows])
    own.sort(key=lambda h: (h.head_name, h.id))
    return own


def match_households(households: Sequence[OwnHousehold], text: str) -> list[OwnHousehold]:
    """Households whose head name contains the typed text (or whose code equals it); an exact name
    wins over partial matches, so 张山 is not ambiguous with 张山林."""
    s = text.strip().replace(" ", "")
    if not s:
        return []
    exact = [h for h in households if h.head_name == s or h.code.lower() == s.lower()]
    if exact:
        return exact
    return [h for h in households if s in h.head_name]


@dataclass
class HouseholdFile:
    """一户一档: everything the household file card shows."""

    household: Household
    village_name: str
    cadre_name: str | None
    members: list[HouseholdMember]
    visits: list[tuple[Visit, str]]  # (visit, cadre name), newest first
    difficulties: list[Difficulty]  # open first, then recent resolved
    since: date | None = None  # the reader's own current pairing with the household began (None: not paired)


# The household with its members (one row each: the members relationship, in its id order), its village's
# name, the current cadre's name (people.cadre_for_household's choice) and when the reader's own current
# pairing with it began (visits.pairing_start's answer): one statement for the head of the file.
_CURRENT_CADRE_NAME = (
    select(Person.name)
    .join(Pairing, Pairing.cadre_id == Person.id)
    .where(Pairing.household_id == Household.id, Pairing.end_date.is_(None), Person.active.is_(True))
    .order_by(Pairing.start_date.desc())
    .limit(1)
    .correlate(Household)
    .scalar_subquery()
)
_READER_SINCE = (
    select(func.min(Pairing.start_date))
    .where(Pairing.cadre_id == bindparam("reader"), Pairing.household_id == Household.id,
           Pairing.end_date.is_(None))
    .correlate(Household)
    .scalar_subquery()
)
_FILE_HEAD = (
    select(Household, Village.name, _CURRENT_CADRE_NAME, _READER_SINCE)
    .outerjoin(Village, Village.id == Household.village_id)
    .where(Household.id == bindparam("hid"))
    .options(joinedload(Household.members))
)
_RECENT_VISITS = (
    select(Visit, Person.name)
    .join(Person, Person.id == Visit.cadre_id)
    .where(Visit.household_id == bindparam("hid"))
    .order_by(Visit.visit_date.desc(), Visit.id.desc())
    .limit(bindparam("n"))
)
_RECENT_DIFFICULTIES = (
    select(Difficulty)
    .where(Difficulty.household_id == bindparam("hid"))
    .order_by((Difficulty.status == DifficultyStatus.RESOLVED.value), Difficulty.id.desc())
    .limit(bindparam("n"))
)


_PAIRED_HOUSEHOLD = select(Household, _READER_SINCE).where(Household.id == bindparam("hid"))


async def household_since(
    session: AsyncSession, household_id: int | None, cadre_id: int
) -> tuple[Household | None, date | None]:
    """The household (None when there is none) and when the cadre's current pairing with it began
    (visits.pairing_start's answer: None when not paired now), in one statement."""
    if household_id is None:
        return None, None
    row = (await session.execute(_PAIRED_HOUSEHOLD, {"hid": household_id, "reader": cadre_id})).first()
    return (None, None) if row is None else (row[0], row[1])


async def file_head(session: AsyncSession, household_id: int, reader_id: int | None) -> HouseholdFile | None:
    """The household (None when there is none) with what the file shows of it besides its ledgers: members,
    village, current cadre, and `since` for the reader (`reader_id`, a person). Nothing is checked here:
    whether the reader may see it is the caller's (people.can_see_household, given `since`)."""
    result = await session.execute(_FILE_HEAD, {"hid": household_id, "reader": reader_id})
    row = result.unique().first()
    if row is None:
        return None
    household, village_name, cadre_name, since = row
    return HouseholdFile(household, village_name or "", cadre_name, list(household.members), [], [], since)


async def household_file(session: AsyncSession, head: HouseholdFile, recent: int = 5) -> HouseholdFile:
    """The file `file_head` began, with its recent visits and difficulties (statements built once: the card
    is opened often)."""
    params = {"hid": head.household.id, "n": recent}
    head.visits = [(v, name) for v, name in (await session.execute(_RECENT_VISITS, params)).all()]
    head.difficulties = list((await session.execute(_RECENT_DIFFICULTIES, params)).scalars())
    return head


async def reachable_accounts(session: AsyncSession, person_id: int) -> list[Account]:
    """A person's chat accounts that can still be messaged."""
    q = select(Account).where(Account.person_id == person_id, Account.unreachable.is_(False))
    return list((await session.execute(q.order_by(Account.id))).scalars())


async def household_accounts(session: AsyncSession, household_id: int) -> list[Account]:
    """Villager chat accounts bound to the household."""
    q = select(Account).where(Account.household_id == household_id, Account.unreachable.is_(False))
    return list((await session.execute(q.order_by(Account.id))).scalars())
