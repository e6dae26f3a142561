"""Set-based due computations: one SQL statement each, over everyone at once (no per-cadre loops).

Every function takes the local `today` (the county's date) and returns plain rows; the tick turns
them into messages and the chat commands into reports. Optional `team_id` narrows a computation to
one team for a leader's on-demand report — the same statement with one more filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, exists, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.scheduler.rules import Calendar, Rules, VillageDays
from bot.store.db import jit_off as engine_jit_off
from bot.store.enums import DifficultyStatus, Role
from bot.store.models import CheckIn, Difficulty, Household, Leave, Pairing, Person, Team, Visit


def iso_week_bounds(d: date) -> tuple[date, date]:
    """Monday and Sunday of d's ISO week."""
    monday = d - timedelta(days=d.isoweekday() - 1)
    return monday, monday + timedelta(days=6)


def iso_week_label(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


# Leave is joined row by row (leaves, then people as the cover) with an index probe on
# leaves.person_id; a cadre with two overlapping leaves would appear twice, so callers keep the first
# row per key. (A grouped derived table looked neater but the planner rescanned it per result row.)
_LV = aliased(Leave, name="lv")
_COVER = aliased(Person, name="cover")


class _LeaveJoin:
    def __init__(self, first: date, last: date) -> None:
        # The aliases are built once (module level): building them per call cost more than the web's
        # whole list query, and stable aliases keep SQLAlchemy's compiled-statement cache warm.
        self.lv = _LV
        self.cover = _COVER
        self.first, self.last = first, last

    @property
    def cols(self) -> tuple[Any, Any]:
        return self.lv.id.label("leave_id"), self.cover.name.label("covered_by")

    def apply(self, stmt: Any, cadre_col: Any) -> Any:
        lv = self.lv
        return stmt.outerjoin(
            lv, and_(lv.person_id == cadre_col, lv.start_date <= self.last, lv.end_date >= self.first)
        ).outerjoin(self.cover, self.cover.id == lv.covered_by_id)


async def _run(session: AsyncSession, stmt: Any) -> Any:
    """Execute on the session's connection as plain Core (tens of thousands of rows: the ORM's
    per-row result processing would cost more than the query).

    On PostgreSQL the JIT is switched off for this transaction: it spends about a second compiling
    these one-shot queries, longer than running them.
    """
    conn = await session.connection()
    if (
        conn.dialect.name == "postgresql"
        and session.info.get("jit_off") is not session.get_transaction()
        and not engine_jit_off(conn.engine)  # bot.store.db.create_engine's connections start with it off
    ):
        await conn.execute(text("SET LOCAL jit = off"))
        session.info["jit_off"] = session.get_transaction()  # once per transaction (a page calls several)
    return await conn.execute(stmt)


#: a set of teams: their ids, or a statement selecting them (a leader's teams read in the same statement:
#: reports.led_team_ids)
TeamIds = Sequence[int] | Select[Any]


def _teams(stmt: Any, column: Any, team_id: int | None, team_ids: TeamIds | None) -> Any:
    """Narrow to one team (`team_id`) and/or a set of teams (`team_ids`: a township, a leader's teams) in
    the same statement: one query for a scope, never a loop per team."""
    if team_id is not None:
        stmt = stmt.where(column == team_id)
    if isinstance(team_ids, Select):
        stmt = stmt.where(column.in_(team_ids))
    elif team_ids is not None:
        stmt = stmt.where(column.in_(list(team_ids))) if team_ids else stmt.where(literal(False))
    return stmt


class HouseholdDue(NamedTuple):
    """A currently paired household that needs a visit, with its cadre. (A NamedTuple: built tens of
    thousands of times per tick, and a tuple is much cheaper to build than a frozen dataclass.)"""

    cadre_id: int
    cadre_name: str
    team_id: int | None
    household_id: int
    household_code: str
    head_name: str
    last_visit: date | None
    days_overdue: int  # 0 when not (yet) overdue, e.g. in seasonal lists
    on_leave: bool
    covered_by: str | None


def _overdue_cond(today: date, cadence_days: int) -> tuple[Any, Any]:
    """The overdue rule as SQL: (WHERE clause on a current Pairing, last-visit scalar). A current pairing
    started more than `cadence_days` ago whose household had no visit in the last `cadence_days` days.
    Shared by the full list (tick, /overdue) and the web's paged list, so both count the same."""
    cutoff = today - timedelta(days=cadence_days)
    recent = exists(
        select(literal(1)).where(
            Visit.household_id == Pairing.household_id, Visit.visit_date >= cutoff, Visit.visit_date <= today
        )
    )
    last = (
        select(func.max(Visit.visit_date))
        .where(Visit.household_id == Pairing.household_id, Visit.visit_date <= today)
        .correlate(Pairing)
        .scalar_subquery()
        .label("last_visit")
    )
    return and_(Pairing.end_date.is_(None), Pairing.start_date < cutoff, ~recent), last


async def overdue_households(
    session: AsyncSession,
    today: date,
    cadence_days: int,
    *,
    team_id: int | None = None,
    cadre_id: int | None = None,
    team_ids: TeamIds | None = None,
    household_ids: Sequence[int] | None = None,
) -> list[HouseholdDue]:
    """Current pairings with no visit in the last `cadence_days` days and a start older than that:
    due by last visit (or pairing start, whichever is later) + N, overdue from the day after.

    Written as an anti-join on recent visits (an index range over the last N days), so the cost
    follows the recent visits, not the whole history; the last-visit date is looked up only for
    the households in the result. `team_ids` / `household_ids` narrow it in the same statement.
    """
    cond, last = _overdue_cond(today, cadence_days)
    lj = _LeaveJoin(today, today)
    stmt = (
        select(
            Pairing.cadre_id,
            Person.name,
            Person.team_id,
            Pairing.household_id,
            Household.code,
            Household.head_name,
            Pairing.start_date,
            last,
            *lj.cols,
        )
        .join(Person, Person.id == Pairing.cadre_id)
        .join(Household, Household.id == Pairing.household_id)
    )
    stmt = (
        lj.apply(stmt, Pairing.cadre_id)
        .where(cond)
        # Most overdue first within each cadre (never visited first, then the oldest last visit).
        .order_by(Person.team_id, Pairing.cadre_id, last.nulls_first(), Pairing.start_date, Pairing.household_id)
    )
    stmt = _teams(stmt, Person.team_id, team_id, team_ids)
    if cadre_id is not None:
        stmt = stmt.where(Pairing.cadre_id == cadre_id)
    if household_ids is not None:
        stmt = stmt.where(Pairing.household_id.in_(list(household_ids)))
    # A hot loop at province scale (tens of thousands of rows): positional unpacking, keyword-free
    # construction, the due date computed once per distinct anchor date.
    out: list[HouseholdDue] = []
    seen: set[tuple[int, int]] = set()
    ordinal_due = today.toordinal() - cadence_days
    for cid, cname, tid, hid, code, head, start, last_visit, leave_id, cover in (await _run(session, stmt)).all():
        key = (cid, hid)
        if key in seen:
            continue
        seen.add(key)
        anchor = start if last_visit is None or last_visit < start else last_visit
        out.append(HouseholdDue(cid, cname, tid, hid, code, head, last_visit, ordinal_due - anchor.toordinal(),
                                leave_id is not None, cover))
    return out


async def overdue_of(
    session: AsyncSession, today: date, cadence_days: int, household_ids: Sequence[int], *,
    team_ids: Sequence[int] | None = None,
) -> dict[int, tuple[date | None, int]]:
    """Which of these households are overdue (the `_overdue_cond` rule), with their last visit and days
    overdue: for marking one page of a list (no cadre names, leaves or ordering to build)."""
    if not household_ids:
        return {}
    cond, last = _overdue_cond(today, cadence_days)
    stmt = select(Pairing.household_id, Pairing.start_date, last).where(
        cond, Pairing.household_id.in_(list(household_ids)))
    if team_ids is not None:
        stmt = stmt.join(Person, Person.id == Pairing.cadre_id)
        stmt = _teams(stmt, Person.team_id, None, team_ids)
    out: dict[int, tuple[date | None, int]] = {}
    due_ordinal = today.toordinal() - cadence_days
    for hid, start, last_visit in (await _run(session, stmt)).all():
        anchor = start if last_visit is None or last_visit < start else last_visit
        days = due_ordinal - anchor.toordinal()
        if hid not in out or days > out[hid][1]:
            out[hid] = (last_visit, days)
    return out


async def overdue_counts(
    session: AsyncSession, today: date, cadence_days: int, *, team_ids: Sequence[int] | None = None
) -> dict[int, int]:
    """Overdue households per team (the pairing cadre's team): the same rule as `overdue_households`,
    counted in SQL (no rows, no last-visit lookups) for the dashboard's figures."""
    cond, _ = _overdue_cond(today, cadence_days)
    pairs = (
        select(Person.team_id.label("team_id"), Pairing.cadre_id, Pairing.household_id)
        .join(Person, Person.id == Pairing.cadre_id)
        .where(cond, Person.team_id.is_not(None))
        .distinct()  # one per (cadre, household), as the list keeps them
    )
    sub = _teams(pairs, Person.team_id, None, team_ids).subquery()
    stmt = select(sub.c.team_id, func.count()).group_by(sub.c.team_id)
    return {int(tid): int(n) for tid, n in (await _run(session, stmt)).all()}


async def overdue_page(
    session: AsyncSession,
    today: date,
    cadence_days: int,
    *,
    where: Any,
    order: str = "code",
    offset: int = 0,
    limit: int = 50,
    text_filter: Any = None,
) -> list[tuple[Any, ...]]:
    """One page of overdue households for the web list: (household id, code, head's name, village name, last
    visit, days overdue), ordered by code / name / village in SQL (offset paging on the households' indexes), the
    scope given as `where` (a clause on Pairing / Person / Household). The overdue rule is `_overdue_cond`."""
    from bot.store.models import Village

    cond, last = _overdue_cond(today, cadence_days)
    order_col = {"name": Household.head_name, "village": Village.name}.get(order, Household.code)
    stmt = (
        select(Household.id, Household.code, Household.head_name, Village.name, Pairing.start_date, last)
        .join(Pairing, Pairing.household_id == Household.id)
        .join(Person, Person.id == Pairing.cadre_id)
        .join(Village, Village.id == Household.village_id)
        .where(cond, where)
        .order_by(order_col, Household.id)
        .offset(offset)
        .limit(limit)
    )
    if text_filter is not None:
        stmt = stmt.where(text_filter)
    out = []
    for hid, code, head, vname, start, last_visit in (await _run(session, stmt)).all():
        anchor = start if last_visit is None or last_visit < start else last_visit
        out.append((hid, code, head, vname, last_visit, today.toordinal() - cadence_days - anchor.toordinal()))
    return out


async def season_missing(
    session: AsyncSession,
    first: date,
    upto: date,
    today: date,
    *,
    kind: str | None = None,
    team_id: int | None = None,
    team_ids: Sequence[int] | None = None,
) -> list[HouseholdDue]:
    """Current pairings whose household had no visit between first and upto (inclusive); with
    `kind`, only visits of that kind count (the county's "require the seasonal kind" option)."""
    cond = [Visit.household_id == Pairing.household_id, Visit.visit_date >= first, Visit.visit_date <= upto]
    if kind is not None:
        cond.append(Visit.kind == kind)
    visited = exists(select(literal(1)).where(*cond))
    lj = _LeaveJoin(today, today)
    stmt = (
        select(
            Pairing.cadre_id,
            Person.name.label("cadre_name"),
            Person.team_id,
            Pairing.household_id,
            Household.code,
            Household.head_name,
            *lj.cols,
        )
        .join(Person, Person.id == Pairing.cadre_id)
        .join(Household, Household.id == Pairing.household_id)
    )
    stmt = (
        lj.apply(stmt, Pairing.cadre_id)
        .where(Pairing.end_date.is_(None), Pairing.start_date <= upto, ~visited)
        .order_by(Person.team_id, Pairing.cadre_id, Household.code)
    )
    stmt = _teams(stmt, Person.team_id, team_id, team_ids)
    out: dict[tuple[int, int], HouseholdDue] = {}
    for r in (await _run(session, stmt)).mappings().all():
        out.setdefault(
            (r["cadre_id"], r["household_id"]),
            HouseholdDue(
                cadre_id=r["cadre_id"],
                cadre_name=r["cadre_name"],
                team_id=r["team_id"],
                household_id=r["household_id"],
                household_code=r["code"],
                head_name=r["head_name"],
                last_visit=None,
                days_overdue=0,
                on_leave=r["leave_id"] is not None,
                covered_by=r["covered_by"],
            ),
        )
    return list(out.values())


@dataclass(frozen=True, slots=True)
class CadreWeek:
    """One cadre's numbers for an ISO week."""

    cadre_id: int
    cadre_name: str
    team_id: int | None
    checkin_days: int
    visits: int
    on_leave: bool
    covered_by: str | None
    far_checkins: int = 0  # check-ins located farther than the rules' far_meters from the village point


async def cadre_weeks(
    session: AsyncSession,
    monday: date,
    *,
    upto: date | None = None,
    below: int | None = None,
    team_id: int | None = None,
    cadre_ids: list[int] | None = None,
    far_m: float = VillageDays().far_meters,
    team_ids: TeamIds | None = None,
    shortfall_first: int | None = None,
    skip: int = 0,
) -> list[CadreWeek]:
    """Check-in days and visits per active cadre in the ISO week starting monday (up to `upto`).

    With `below`, only cadres whose check-in days are under that target (the shortfall list).
    `on_leave` is true when a recorded leave overlaps the days counted. With `shortfall_first`, only
    that many cadres (after `skip`), fewest check-in days first (then by name): the web's list, sorted and
    paged in SQL.
    """
    last = monday + timedelta(days=6)
    if upto is not None:
        last = min(last, upto)
    ck_q = (
        select(
            CheckIn.cadre_id,
            func.count().label("n"),
            func.sum(case((CheckIn.distance_m > far_m, 1), else_=0)).label("far"),
        )
        .where(CheckIn.day >= monday, CheckIn.day <= last)
        .group_by(CheckIn.cadre_id)
    )
    vs_q = (
        select(Visit.cadre_id, func.count().label("n"))
        .where(Visit.visit_date >= monday, Visit.visit_date <= last)
        .group_by(Visit.cadre_id)
    )
    if team_id is not None or team_ids is not None:
        # Count only the scope's cadres' rows (the planner does not push the outer team filter into a
        # grouped subquery): a team's or a township's week reads its own check-ins, not the county's.
        mine = _teams(select(Person.id), Person.team_id, team_id, team_ids)
        ck_q = ck_q.where(CheckIn.cadre_id.in_(mine))
        vs_q = vs_q.where(Visit.cadre_id.in_(mine))
    ck, vs = ck_q.subquery(), vs_q.subquery()
    lj = _LeaveJoin(monday, last)
    days = func.coalesce(ck.c.n, 0)
    stmt = (
        select(
            Person.id,
            Person.name,
            Person.team_id,
            days.label("days"),
            func.coalesce(vs.c.n, 0).label("visits"),
            *lj.cols,
            func.coalesce(ck.c.far, 0).label("far"),
        )
        .outerjoin(ck, ck.c.cadre_id == Person.id)
        .outerjoin(vs, vs.c.cadre_id == Person.id)
        .where(Person.role == Role.CADRE.value, Person.active.is_(True))
        .order_by(Person.team_id, Person.id)
    )
    stmt = lj.apply(stmt, Person.id)
    if below is not None:
        stmt = stmt.where(days < below)
    stmt = _teams(stmt, Person.team_id, team_id, team_ids)
    if cadre_ids is not None:
        stmt = stmt.where(Person.id.in_(cadre_ids))
    if shortfall_first is not None:
        stmt = stmt.order_by(None).order_by(days, Person.name, Person.id).offset(skip).limit(shortfall_first)
    out: dict[int, CadreWeek] = {}
    for r in (await _run(session, stmt)).all():
        out.setdefault(r[0], CadreWeek(
            cadre_id=r[0],
            cadre_name=r[1],
            team_id=r[2],
            checkin_days=int(r[3]),
            visits=int(r[4]),
            on_leave=r[5] is not None,
            covered_by=r[6],
            far_checkins=int(r[-1] or 0),
        ))
    return list(out.values())


AGE_BUCKETS = ("0_3", "3_7", "8_30", "30_")  # days open: under 3, 3–7, 8–30, over 30


async def open_difficulty_ages(
    session: AsyncSession, at: datetime, *, team_ids: Sequence[int] | None = None
) -> dict[int | None, list[int]]:
    """Difficulties unresolved at `at`, per team, counted by age (`AGE_BUCKETS`) in one grouped statement."""
    day = timedelta(days=1)
    bucket = case(
        (Difficulty.created_at > at - 3 * day, 0),
        (Difficulty.created_at > at - 8 * day, 1),
        (Difficulty.created_at > at - 31 * day, 2),
        else_=3,
    ).label("bucket")
    stmt = (
        select(Difficulty.team_id, bucket, func.count())
        .where(Difficulty.created_at <= at, or_(Difficulty.resolved_at.is_(None), Difficulty.resolved_at > at))
        .group_by(Difficulty.team_id, bucket)
    )
    stmt = _teams(stmt, Difficulty.team_id, None, team_ids)
    out: dict[int | None, list[int]] = {}
    for tid, b, n in (await _run(session, stmt)).all():
        out.setdefault(tid, [0] * len(AGE_BUCKETS))[int(b)] += int(n)
    return out


@dataclass(frozen=True, slots=True)
class LateDifficulty:
    id: int
    team_id: int | None
    category: str
    description: str
    reporter_name: str
    head_name: str | None
    status: str
    escalation_level: int
    created_on: date  # local date
    ack_late: bool  # still open past the acknowledgement deadline
    decide_late: bool  # not resolved past the decision deadline


def _latest_breached(today: date, n: int, cal: Calendar) -> date:
    """The latest local creation date whose n-working-day deadline ended before today."""
    d = today
    while cal.add_working_days(d, n) >= today:
        d -= timedelta(days=1)
    return d


def _local_midnight_utc(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz)


async def late_difficulties(
    session: AsyncSession, today: date, rules: Rules, *, team_id: int | None = None
) -> list[LateDifficulty]:
    """Unresolved difficulties past the acknowledgement or the decision deadline (working days)."""
    cal = rules.calendar
    tz = rules.tz
    limits = rules.difficulties
    ack_cut = _local_midnight_utc(_latest_breached(today, limits.ack_working_days, cal) + timedelta(days=1), tz)
    dec_cut = _local_midnight_utc(_latest_breached(today, limits.decide_working_days, cal) + timedelta(days=1), tz)
    ack_late = and_(Difficulty.status == DifficultyStatus.OPEN.value, Difficulty.created_at < ack_cut)
    dec_late = Difficulty.created_at < dec_cut
    stmt = (
        select(
            Difficulty.id,
            Difficulty.team_id,
            Difficulty.category,
            Difficulty.description,
            Person.name,
            Household.head_name,
            Difficulty.status,
            Difficulty.escalation_level,
            Difficulty.created_at,
            ack_late.label("ack_late"),
            dec_late.label("dec_late"),
        )
        .join(Person, Person.id == Difficulty.reporter_id)
        .outerjoin(Household, Household.id == Difficulty.household_id)
        .where(Difficulty.status != DifficultyStatus.RESOLVED.value, or_(ack_late, dec_late))
        .order_by(Difficulty.team_id, Difficulty.created_at)
    )
    if team_id is not None:
        stmt = stmt.where(Difficulty.team_id == team_id)
    rows = (await _run(session, stmt)).all()
    return [
        LateDifficulty(
            id=r[0],
            team_id=r[1],
            category=r[2],
            description=r[3],
            reporter_name=r[4],
            head_name=r[5],
            status=r[6],
            escalation_level=r[7] or 0,
            created_on=r[8].astimezone(tz).date(),
            ack_late=bool(r[9]),
            decide_late=bool(r[10]),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: int
    name: str
    leader_id: int | None
    township_contact_id: int | None


async def teams(session: AsyncSession) -> dict[int, TeamRow]:
    """Every team with its leader and township contact."""
    rows = (await session.execute(select(Team.id, Team.name, Team.leader_id, Team.township_contact_id))).all()
    return {r[0]: TeamRow(*r) for r in rows}
