"""What a team leader can ask for at any time (/overdue, /week) and the weekly digest with its chart.

Channel-free: each function returns the data and the rendered text (split into pages that fit one
Telegram message); the chat layer only checks the role and sends the pages.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.core.types import Photo
from bot.i18n import Translator
from bot.scheduler import due, render
from bot.scheduler.chart import week_chart
from bot.scheduler.rules import Rules
from bot.store.models import Person, Team

if TYPE_CHECKING:
    from bot.scheduler.tick import Context, Plan


@dataclass
class Report:
    """Rows plus the text to show, already split into messages."""

    pages: list[str]
    overdue: list[due.HouseholdDue] = field(default_factory=list)
    weeks: list[due.CadreWeek] = field(default_factory=list)
    late: list[due.LateDifficulty] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.pages)


def leader_teams_select(leader_person_id: int, *cols: Any, also: Any = None, person: Any = Person) -> Any:
    """SELECT `cols` of the teams a person leads (Team.leader_id, or their own team when they have the leader
    role) — or, with `also`, of the teams matching that other condition too (the web's scope, one statement).
    `person`: the people table or an alias of it (inside another statement that reads people)."""
    leads = or_(Team.leader_id == leader_person_id, (person.team_id == Team.id) & (person.role == "leader"))
    return (
        select(*cols)
        .outerjoin(person, person.id == leader_person_id)
        .where(leads if also is None else or_(leads, also))
        .order_by(Team.id)
        .distinct()
    )


_LEADER = aliased(Person, name="leader")  # built once: stable aliases keep the compiled-statement cache warm


def led_team_ids(leader_person_id: int) -> Any:
    """The ids of `leader_teams`, as a statement for `team_ids` (due.TeamIds): read in the report's own
    statement instead of a query of their own (the leader's row under an alias: never the report's people)."""
    return leader_teams_select(leader_person_id, Team.id, person=_LEADER)


async def leader_teams(session: AsyncSession, leader_person_id: int) -> list[tuple[int, str]]:
    """The teams a person leads (Team.leader_id, or their own team when they have the leader role)."""
    stmt = leader_teams_select(leader_person_id, Team.id, Team.name)
    return [(r[0], r[1]) for r in (await session.execute(stmt)).all()]


async def overdue_report(
    session: AsyncSession, leader_person_id: int, today: date, *, t: Translator, rules: Rules
) -> Report:
    """/overdue (逾期未走访): the leader's team's overdue households grouped by cadre, with days overdue."""
    cadence = rules.visits.cadence_days
    # One statement for all the leader's teams (ordered by team, as one per team would be listed).
    rows = await due.overdue_households(session, today, cadence, team_ids=led_team_ids(leader_person_id))
    if not rows:
        if not await leader_teams(session, leader_person_id):
            return Report(pages=[t("sched.report.no_team")])
        return Report(pages=[t("sched.report.overdue.none", cadence=cadence)])
    head = t("sched.visit.leader.head", date=today.isoformat(), count=len(rows), cadence=cadence)
    return Report(pages=render.paginate(head, render.grouped_overdue_lines(t, rows)), overdue=rows)


async def week_report(
    session: AsyncSession, leader_person_id: int, today: date, *, t: Translator, rules: Rules
) -> Report:
    """/week (本周驻村情况): village days and visits per cadre so far this ISO week, against target."""
    target = rules.village_days.target
    monday, sunday = due.iso_week_bounds(today)
    # One statement for all the leader's teams (ordered by team, as one per team would be listed).
    rows = await due.cadre_weeks(session, monday, upto=today, team_ids=led_team_ids(leader_person_id),
                                 far_m=rules.village_days.far_meters)
    if not rows and not await leader_teams(session, leader_person_id):
        return Report(pages=[t("sched.report.no_team")])
    short = sum(1 for r in rows if r.checkin_days < target and not r.on_leave)
    head = t("sched.report.week.head", start=monday.isoformat(), end=sunday.isoformat(), target=target,
             count=len(rows), short=short)
    return Report(pages=render.paginate(head, render.week_lines(t, rows, target)), weeks=rows)


@dataclass
class Digest:
    """One team's weekly digest: the text and the bar chart PNG."""

    text: str
    chart_png: bytes | None
    caption: str


def _digest_text(t: Translator, team_name: str, monday: date, target: int, weeks: list[due.CadreWeek],
                 overdue_count: int, late: list[due.LateDifficulty]) -> str:
    sunday = monday + timedelta(days=6)
    lines = render.week_lines(t, weeks, target)
    lines.append(t("sched.digest.overdue", count=overdue_count))
    if late:
        lines.append(t("sched.digest.late_head", count=len(late)))
        lines.extend(render.difficulty_line(t, d) for d in late)
    head = t("sched.digest.head", team=team_name, start=monday.isoformat(), end=sunday.isoformat())
    return render.join_limited(t, head, lines)


def _chart(t: Translator, fallback: Translator, team_name: str, monday: date, target: int,
           weeks: list[due.CadreWeek]) -> tuple[bytes, str]:
    png = week_chart(t, fallback, team_name, monday.isoformat(), [w.cadre_name for w in weeks], [w.visits for w in weeks],
                     [w.checkin_days for w in weeks], target)
    return png, t("sched.chart.caption", team=team_name, target=target)


async def weekly_digest(
    session: AsyncSession, leader_person_id: int, today: date, *, t: Translator, fallback: Translator,
    rules: Rules,
) -> Digest:
    """Last week's digest for a leader (on demand): per-cadre numbers, overdue count, late difficulties
    in red, and the bar chart."""
    target = rules.village_days.target
    monday, _ = due.iso_week_bounds(today - timedelta(days=7))
    teams = await leader_teams(session, leader_person_id)
    if not teams:
        return Digest(t("sched.report.no_team"), None, "")
    team_id, team_name = teams[0]
    weeks = await due.cadre_weeks(session, monday, team_id=team_id, far_m=rules.village_days.far_meters)
    overdue = await due.overdue_households(session, today, rules.visits.cadence_days, team_id=team_id)
    late = await due.late_difficulties(session, today, rules, team_id=team_id)
    text = _digest_text(t, team_name, monday, target, weeks, len(overdue), late)
    png, caption = await asyncio.to_thread(_chart, t, fallback, team_name, monday, target, weeks)
    return Digest(text, png, caption)


async def build_digests(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    """The Monday digest for every team leader: three set-based queries for all teams, then one text
    and one chart per team and language."""
    rules = ctx.rules
    target = rules.village_days.target
    last_week = ctx.today - timedelta(days=7)
    monday, _ = due.iso_week_bounds(last_week)
    period = due.iso_week_label(last_week)
    weeks_by: dict[int, list[due.CadreWeek]] = defaultdict(list)
    for w in await due.cadre_weeks(s, monday, far_m=rules.village_days.far_meters):
        if w.team_id is not None:
            weeks_by[w.team_id].append(w)
    overdue_by: dict[int, int] = defaultdict(int)
    for r in await ctx.overdue(s):
        if r.team_id is not None:
            overdue_by[r.team_id] += 1
    late_by: dict[int, list[due.LateDifficulty]] = defaultdict(list)
    for d in await due.late_difficulties(s, ctx.today, rules):
        if d.team_id is not None:
            late_by[d.team_id].append(d)
    fallback = ctx.catalogs.get("en")
    for team in ctx.teams.values():
        recips = ctx.recipients.get(team.leader_id or -1, [])
        weeks = weeks_by.get(team.id, [])
        if not recips or not weeks:
            continue
        charts: dict[str | None, tuple[bytes, str]] = {}
        for rc in recips:
            tr = ctx.catalogs.get(rc.lang)
            if tr.lang not in charts:
                charts[tr.lang] = await asyncio.to_thread(_chart, tr, fallback, team.name, monday, target, weeks)
        late = late_by.get(team.id, [])
        overdue_n = overdue_by.get(team.id, 0)
        plan.send(ctx, team.leader_id, "digest", f"{period}:t{team.id}", lambda t, team=team, weeks=weeks,
                  late=late, overdue_n=overdue_n: (
                      _digest_text(t, team.name, monday, target, weeks, overdue_n, late), None, None))
        plan.send(ctx, team.leader_id, "digest.chart", f"{period}:t{team.id}", lambda t, charts=charts: (
            charts[t.lang][1], None, Photo(data=charts[t.lang][0], filename=f"week-{period}.png")))
