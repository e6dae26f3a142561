"""The dashboard's aggregate figures, precomputed per team and week (table `team_figures`).

Every figure is computed set-based for many teams at once by the same functions the chat's reports use
(bot/scheduler/due.py), written as one row per (week, team, figure, key), and read by the web in one
grouped statement: a township's or the county's number is the SUM of its teams' rows. Lists (households,
cadres, difficulties) are never precomputed; only these counts are.

How stale a figure may be:
- this week's figures: at most `FRESH_SECONDS` (5 min) old — the scheduler tick refreshes them, and the web
  starts a refresh in the background when it reads older ones (showing the stored value with "as of HH:MM");
- past weeks (the trend bars): at most `PAST_SECONDS` (6 h) — they change only by late entries;
- `mark_dirty(team, week)` (an action on the web, or any service that changes a figure's inputs) makes the
  next read refresh that team right away.

Adding a figure: one `register(name, compute, keys=...)` call — `compute(session, at)` returns
`{team_id: {key: number}}` for the teams `at.team_ids` (None: every team), as of `at.day`. With
`trend=True` it is also computed for past weeks. The web reads it with `read()` and sums per key.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, func, literal, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.scheduler import due
from bot.scheduler.rules import Rules, season_for
from bot.store.enums import CaseStatus, VisitKind
from bot.store.models import Account, Case, Household, Pairing, Person, PolicyQuestion, Team, TeamFigure

log = logging.getLogger(__name__)

TABLE: Table = TeamFigure.__table__  # type: ignore[assignment]
FRESH_SECONDS = 300.0
PAST_SECONDS = 6 * 3600.0
TREND_WEEKS = 6
_LOCK_KEY = 7_311_015  # pg advisory lock: one county-wide refresh at a time across processes


@dataclass(frozen=True, slots=True)
class At:
    """What a figure is computed for: the week (its Monday), the day it is "as of" (today in this week,
    the Sunday of a past week) and that day's end (`at`: now for this week), and which teams."""

    monday: date
    day: date
    at: datetime
    today: date
    rules: Rules
    team_ids: Sequence[int] | None

    @property
    def current(self) -> bool:
        return self.day == self.today


Compute = Callable[[AsyncSession, At], Awaitable[dict[int, dict[str, float]]]]


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    compute: Compute
    keys: tuple[str, ...]  # written for every team, zeros too (a figure may add other keys as they come)
    trend: bool = False  # also computed for past weeks


REGISTRY: dict[str, Figure] = {}


def register(name: str, compute: Compute, *, keys: Iterable[str] = ("n",), trend: bool = False) -> Figure:
    """Add a figure (see the module docstring). A name is registered once."""
    if name in REGISTRY:
        raise ValueError(f"figure {name!r} registered twice")
    if not tuple(keys):
        raise ValueError(f"figure {name!r} needs at least one fixed key (written for every team, zeros too)")
    fig = Figure(name, compute, tuple(keys), trend)
    REGISTRY[name] = fig
    return fig


def monday_of(d: date) -> date:
    return due.iso_week_bounds(d)[0]


def trend_mondays(today: date, weeks: int = TREND_WEEKS) -> list[date]:
    """The Mondays of the last `weeks` ISO weeks, oldest first (this week last)."""
    m = monday_of(today)
    return [m - timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]


def at_for(rules: Rules, monday: date, today: date, now: datetime, team_ids: Sequence[int] | None) -> At:
    if monday == monday_of(today):
        return At(monday, today, now, today, rules, team_ids)
    sunday = monday + timedelta(days=6)
    end = datetime.combine(sunday + timedelta(days=1), time.min, tzinfo=rules.tz)
    return At(monday, sunday, end, today, rules, team_ids)


# ------------------------------------------------------------------------------------------ built-in figures
def week_totals(weeks: Iterable[due.CadreWeek], target: int) -> dict[int, dict[str, float]]:
    """Per team: cadres counted (not on leave), their check-in days capped at the target, visits, far check-ins."""
    out: dict[int, dict[str, float]] = defaultdict(lambda: {"cadres": 0.0, "days_capped": 0.0, "visits": 0.0,
                                                            "far": 0.0})
    for w in weeks:
        if w.team_id is None:
            continue
        row = out[w.team_id]
        row["visits"] += w.visits
        row["far"] += w.far_checkins
        if not w.on_leave:
            row["cadres"] += 1
            row["days_capped"] += min(w.checkin_days, target)
    return out


def days_met(cadres: float, days_capped: float, target: int) -> float:
    """Per cent of the cadres' weekly village-day target met (days beyond the target do not count)."""
    if cadres <= 0 or target <= 0:
        return 100.0
    return 100.0 * days_capped / (cadres * target)


async def _week(s: AsyncSession, at: At) -> dict[int, dict[str, float]]:
    vd = at.rules.village_days
    rows = await due.cadre_weeks(s, at.monday, upto=at.day, team_ids=at.team_ids, far_m=vd.far_meters)
    return dict(week_totals(rows, vd.target))


async def _overdue(s: AsyncSession, at: At) -> dict[int, dict[str, float]]:
    counts = await due.overdue_counts(s, at.day, at.rules.visits.cadence_days, team_ids=at.team_ids)
    return {tid: {"n": float(n)} for tid, n in counts.items()}


async def _difficulties(s: AsyncSession, at: At) -> dict[int, dict[str, float]]:
    ages = await due.open_difficulty_ages(s, at.at, team_ids=at.team_ids)
    return {tid: dict(zip(due.AGE_BUCKETS, map(float, b), strict=True)) for tid, b in ages.items() if tid is not None}


def current_season(rules: Rules, today: date) -> tuple[VisitKind, date, date]:
    windows = {VisitKind(n): win for n, win in rules.seasons.windows().items()}
    return season_for(today, windows)


async def _season(s: AsyncSession, at: At) -> dict[int, dict[str, float]]:
    """This season's window: currently paired households, and those with no visit in the window so far."""
    kind, first, last = current_season(at.rules, at.today)
    missing = await due.season_missing(
        s, first, min(last, at.today), at.today, team_ids=at.team_ids,
        kind=kind.value if at.rules.visits.require_seasonal_kind else None)
    out: dict[int, dict[str, float]] = defaultdict(lambda: {"missing": 0.0, "paired": 0.0})
    for m in missing:
        if m.team_id is not None:
            out[m.team_id]["missing"] += 1
    paired = (
        select(Person.team_id, func.count(func.distinct(Pairing.household_id)))
        .join(Person, Person.id == Pairing.cadre_id)
        .where(Pairing.end_date.is_(None), Person.team_id.is_not(None))
        .group_by(Person.team_id)
    )
    if at.team_ids is not None:
        paired = paired.where(Person.team_id.in_(list(at.team_ids)) if at.team_ids else literal(False))
    for tid, n in (await s.execute(paired)).all():
        if tid is not None:
            out[tid]["paired"] = float(n)
    return dict(out)


OPEN_CASE_STATUSES = tuple(st.value for st in CaseStatus if st is not CaseStatus.RESOLVED)


async def _cases(s: AsyncSession, at: At) -> dict[int, dict[str, float]]:
    """Villagers' cases not resolved, per status (bot/services/cases)."""
    stmt = (select(Case.team_id, Case.status, func.count())
            .where(Case.status != CaseStatus.RESOLVED.value, Case.team_id.is_not(None))
            .group_by(Case.team_id, Case.status))
    if at.team_ids is not None:
        stmt = stmt.where(Case.team_id.in_(list(at.team_ids)) if at.team_ids else literal(False))
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for tid, status, n in (await s.execute(stmt)).all():
        if tid is not None:
            out[tid][status] = float(n)
    return dict(out)


async def _topics(s: AsyncSession, at: At, since: datetime | None = None,
                  by_topic: bool = True) -> dict[int, dict[str, float]]:
    """Villagers' policy questions of the last 30 days (or since `since`) per topic, counted for the team of
    the asker's household: its current cadre's team, else the team of its village. Not by topic: {"n": all}."""
    since = since if since is not None else at.at - timedelta(days=30)
    paired_team = (
        select(func.min(Person.team_id)).join(Pairing, Pairing.cadre_id == Person.id)
        .where(Pairing.household_id == Household.id, Pairing.end_date.is_(None))
        .correlate(Household).scalar_subquery()
    )
    village_team = (select(func.min(Team.id)).where(Team.village_id == Household.village_id)
                    .correlate(Household).scalar_subquery())
    team = func.coalesce(paired_team, village_team).label("team")
    inner = (
        select(team, PolicyQuestion.topic.label("topic"))
        .join(Account, Account.id == PolicyQuestion.account_id)
        .join(Household, Household.id == Account.household_id)
        .where(PolicyQuestion.created_at >= since, PolicyQuestion.created_at < at.at, PolicyQuestion.topic != "none")
        .subquery()
    )
    stmt = select(inner.c.team, inner.c.topic, func.count()).where(inner.c.team.is_not(None)).group_by(
        inner.c.team, inner.c.topic)
    if at.team_ids is not None:
        stmt = stmt.where(inner.c.team.in_(list(at.team_ids)) if at.team_ids else literal(False))
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for tid, topic, n in (await s.execute(stmt)).all():
        if by_topic:
            out[tid][topic] = float(n)
            out[tid]["_all"] = out[tid].get("_all", 0.0) + n
        else:
            out[tid]["n"] = out[tid].get("n", 0.0) + n
    return dict(out)


register("week", _week, keys=("cadres", "days_capped", "visits", "far"), trend=True)
register("overdue", _overdue, keys=("n",), trend=True)
register("difficulties", _difficulties, keys=due.AGE_BUCKETS, trend=True)
register("season", _season, keys=("missing", "paired"))
def week_start(at: At) -> datetime:
    """The week's Monday, 00:00 in the county's timezone."""
    return datetime.combine(at.monday, time.min, tzinfo=at.rules.tz)


async def _cases_open(s: AsyncSession, at: At) -> dict[int, dict[str, float]]:
    """The cases trend: villagers' cases open at the end of the week (opened before, not resolved by then)
    and opened in the week."""
    start = week_start(at)
    open_then = case(((Case.resolved_at.is_(None)) | (Case.resolved_at > at.at), 1), else_=0)
    new = case((Case.created_at >= start, 1), else_=0)
    stmt = (select(Case.team_id, func.sum(open_then), func.sum(new))
            .where(Case.created_at < at.at, Case.team_id.is_not(None)).group_by(Case.team_id))
    if at.team_ids is not None:
        stmt = stmt.where(Case.team_id.in_(list(at.team_ids)) if at.team_ids else literal(False))
    return {tid: {"open": float(o or 0), "new": float(n or 0)} for tid, o, n in (await s.execute(stmt)).all()
            if tid is not None}


async def _questions(s: AsyncSession, at: At) -> dict[int, dict[str, float]]:
    """The topics trend: villagers' policy questions asked in the week (any topic), per team as `_topics`."""
    return await _topics(s, at, since=week_start(at), by_topic=False)


register("cases", _cases, keys=OPEN_CASE_STATUSES)
register("topics", _topics, keys=("_all",))
register("cases_open", _cases_open, keys=("open", "new"), trend=True)
register("questions", _questions, keys=("n",), trend=True)


# ------------------------------------------------------------------------------------------ refresh
async def _all_team_ids(s: AsyncSession) -> list[int]:
    return list((await s.execute(select(Team.id).order_by(Team.id))).scalars())


async def _upsert(s: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    ins = postgresql.insert(TABLE) if s.get_bind().dialect.name == "postgresql" else sqlite.insert(TABLE)
    stmt = ins.on_conflict_do_update(
        index_elements=["week", "team_id", "name", "key"],
        set_={"value": ins.excluded.value, "computed_at": ins.excluded.computed_at, "dirty": ins.excluded.dirty},
    )
    for i in range(0, len(rows), 5000):
        await s.execute(stmt, rows[i: i + 5000])


async def refresh(
    s: AsyncSession,
    rules: Rules,
    today: date,
    now: datetime,
    *,
    team_ids: Sequence[int] | None = None,
    weeks: Sequence[date] | None = None,
    names: Sequence[str] | None = None,
) -> int:
    """Compute the figures for `weeks` (Mondays; default this week) and `team_ids` (default every team) and
    store them; rows of keys a figure no longer reports are removed. Returns the rows written."""
    weeks = list(weeks) if weeks is not None else [monday_of(today)]
    teams = list(team_ids) if team_ids is not None else await _all_team_ids(s)
    if not teams:
        return 0
    this_monday = monday_of(today)
    written = 0
    for monday in weeks:
        at = at_for(rules, monday, today, now, team_ids)
        for fig in REGISTRY.values():
            if names is not None and fig.name not in names:
                continue
            if monday != this_monday and not fig.trend:
                continue
            values = await fig.compute(s, at)
            rows = []
            for tid in teams:
                got = values.get(tid, {})
                for key in dict.fromkeys((*fig.keys, *got)):
                    rows.append({"week": monday, "team_id": tid, "name": fig.name, "key": key,
                                 "value": float(got.get(key, 0.0)), "computed_at": now, "dirty": False})
            team_cond = TABLE.c.team_id.in_(teams) if team_ids is not None else literal(True)
            await s.execute(delete(TABLE).where(TABLE.c.week == monday, TABLE.c.name == fig.name, team_cond,
                                                TABLE.c.computed_at < now))
            await _upsert(s, rows)
            written += len(rows)
    return written


def _expected(week: date, this_monday: date) -> list[str]:
    """The figures a week must hold: every registered one this week, the trend ones in past weeks."""
    return [f.name for f in REGISTRY.values() if week == this_monday or f.trend]


async def _n_teams(s: AsyncSession, team_ids: Sequence[int] | None) -> int:
    if team_ids is not None:
        return len(team_ids)
    return int(await s.scalar(select(func.count()).select_from(Team)) or 0)


async def stale_weeks(
    s: AsyncSession, today: date, now: datetime, team_ids: Sequence[int] | None, weeks: Sequence[date]
) -> tuple[list[date], list[int]]:
    """(weeks to recompute for every given team, teams whose this-week figures were marked dirty). A week is
    recomputed when any registered figure is missing for a team or older than its allowed age."""
    cond: list[Any] = [TABLE.c.week.in_(list(weeks))]
    if team_ids is not None:
        cond.append(TABLE.c.team_id.in_(list(team_ids)) if team_ids else literal(False))
    n_teams = await _n_teams(s, team_ids)
    rows = (await s.execute(
        select(TABLE.c.week, TABLE.c.name, func.min(TABLE.c.computed_at), func.count(func.distinct(TABLE.c.team_id)))
        .where(*cond).group_by(TABLE.c.week, TABLE.c.name)
    )).all()
    seen = {(w, name): (oldest, n) for w, name, oldest, n in rows}
    this_monday = monday_of(today)
    todo = []
    for w in weeks:
        max_age = FRESH_SECONDS if w == this_monday else PAST_SECONDS
        for name in _expected(w, this_monday):
            oldest, n = seen.get((w, name), (None, 0))
            if oldest is None or n < n_teams or (now - oldest).total_seconds() > max_age:
                todo.append(w)
                break
    dirty: list[int] = []
    if this_monday not in todo:
        dirty = sorted(set((await s.execute(
            select(TABLE.c.team_id).where(*cond, TABLE.c.week == this_monday, TABLE.c.dirty.is_(True)).distinct()
        )).scalars()))
    return todo, dirty


async def refresh_stale(
    s: AsyncSession, rules: Rules, today: date, now: datetime, *, team_ids: Sequence[int] | None = None
) -> int:
    """Refresh whatever of the trend weeks is missing, older than allowed, or marked dirty, for `team_ids`
    (every team by default: the scheduler tick). On PostgreSQL a county-wide refresh already running in
    another process is not repeated. Returns the rows written."""
    if team_ids is None and s.get_bind().dialect.name == "postgresql":
        got = await s.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        if not got:
            return 0
    weeks = trend_mondays(today)
    todo, dirty = await stale_weeks(s, today, now, team_ids, weeks)
    written = 0
    if todo:
        written += await refresh(s, rules, today, now, team_ids=team_ids, weeks=todo)
        if team_ids is None:  # weeks no page shows any more
            await s.execute(delete(TABLE).where(TABLE.c.week < weeks[0]))
    if dirty:
        written += await refresh(s, rules, today, now, team_ids=dirty, weeks=[monday_of(today)])
    return written


async def tick_refresh(sessions: async_sessionmaker[AsyncSession], rules: Rules, now: datetime) -> int:
    """The scheduler's minute: refresh whatever of the county's figures is stale (cheap when nothing is)."""
    try:
        async with sessions() as s, s.begin():
            return await refresh_stale(s, rules, now.astimezone(rules.tz).date(), now)
    except Exception:
        log.exception("figure refresh failed")
        return 0


async def mark_dirty(s: AsyncSession, team_id: int | None, today: date) -> None:
    """An action changed a team's figures: its this-week rows are recomputed on the next read or tick."""
    if team_id is None:
        return
    where = (TABLE.c.week == monday_of(today), TABLE.c.team_id == team_id)
    if s.get_bind().dialect.name != "postgresql":  # one writer at a time: nothing to wait for
        await s.execute(update(TABLE).where(*where).values(dirty=True))
        return
    # Rows a refresh is writing right now are skipped, never waited for: the refresh locks a team's rows
    # figure by figure, this UPDATE would lock them in another order, and the two deadlocked (the user's
    # action was the one rolled back). A skipped row is being recomputed; at worst it misses this action
    # and is recomputed when it is FRESH_SECONDS old, as any figure.
    pk = tuple_(TABLE.c.week, TABLE.c.team_id, TABLE.c.name, TABLE.c.key)
    free = select(TABLE.c.week, TABLE.c.team_id, TABLE.c.name, TABLE.c.key).where(*where).with_for_update(
        skip_locked=True)
    await s.execute(update(TABLE).where(pk.in_(free)).values(dirty=True))


# ------------------------------------------------------------------------------------------ reading
@dataclass
class Figures:
    """A scope's figures for some weeks, summed over its teams: `value(week, name, key)`."""

    values: dict[tuple[date, str, str], float]
    computed_at: dict[date, datetime]  # the oldest row per week
    complete: dict[date, bool]  # every team of the scope has rows for that week
    stale: bool  # something should be recomputed (missing, too old, dirty)

    def value(self, week: date, name: str, key: str = "n") -> float:
        return self.values.get((week, name, key), 0.0)

    def keys(self, week: date, name: str) -> dict[str, float]:
        return {k: v for (w, n, k), v in self.values.items() if w == week and n == name}

    def has(self, week: date) -> bool:
        return self.complete.get(week, False)


async def read(
    s: AsyncSession, team_ids: Sequence[int] | None, weeks: Sequence[date], today: date, now: datetime
) -> Figures:
    """One grouped statement: the scope's figures for `weeks`, summed over its teams (None: the county)."""
    cond: list[Any] = [TABLE.c.week.in_(list(weeks))]
    if team_ids is not None:
        cond.append(TABLE.c.team_id.in_(list(team_ids)) if team_ids else literal(False))
    n_teams = await _n_teams(s, team_ids)
    dirty_n = func.max(case((TABLE.c.dirty.is_(True), 1), else_=0))
    rows = (await s.execute(
        select(TABLE.c.week, TABLE.c.name, TABLE.c.key, func.sum(TABLE.c.value), func.min(TABLE.c.computed_at),
               func.count(), dirty_n)
        .where(*cond).group_by(TABLE.c.week, TABLE.c.name, TABLE.c.key)
    )).all()
    values: dict[tuple[date, str, str], float] = {}
    oldest: dict[date, datetime] = {}
    counted: dict[tuple[date, str], int] = defaultdict(int)
    dirty = False
    for week, name, key, total, at, n, d in rows:
        values[(week, name, key)] = float(total or 0)
        if week not in oldest or at < oldest[week]:
            oldest[week] = at
        counted[(week, name)] = max(counted[(week, name)], int(n))  # every team has each fixed key
        dirty = dirty or bool(d)
    this_monday = monday_of(today)
    complete = {w: all(counted.get((w, name), 0) >= n_teams for name in _expected(w, this_monday)) for w in weeks}
    stale = dirty or not all(complete.values()) or any(
        (now - oldest[w]).total_seconds() > (FRESH_SECONDS if w == this_monday else PAST_SECONDS)
        for w in weeks if w in oldest)
    return Figures(values, oldest, complete, stale)
