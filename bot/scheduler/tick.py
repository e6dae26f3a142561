"""One scheduler tick: find the rules due at this local time, compute them set-based, write the outbox.

A tick is idempotent: each rule is run at most once per period (a "run:" mark), every message has a
dedup key (recipient + rule + period), and the leader's daily overdue alert is only written when the
list changed (a "snap:" hash). Two ticks racing, or a re-run after a crash, write nothing twice.

The tick reads in one transaction and writes in a second one that starts with a write: on SQLite a
read-then-write transaction can fail when another process wrote in between; a write-first one
simply waits for the lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import groupby
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.types import Photo, Reply
from bot.i18n import Catalogs, Safe
from bot.scheduler import due, render
from bot.scheduler.cases_due import run_cases
from bot.scheduler.outbox import OutMessage, enqueue, prune
from bot.scheduler.rules import Rules
from bot.store.models import Account, Case, Difficulty, MonitorCase, Person, SchedulerMark
from bot.store.retention import (
    prune_processed_updates,
    prune_rate_limits,
    prune_rebind_requests,
    prune_stale_dialogs,
)

MARKS = cast(Table, SchedulerMark.__table__)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recipient:
    """A bound, reachable chat account of a person, with the language to write in."""

    person_id: int
    account_id: int
    chat_id: str
    channel: str
    lang: str | None


@dataclass
class Context:
    """What every rule of one tick shares: the clock reading, the recipients, the teams."""

    now: datetime
    today: date
    rules: Rules
    catalogs: Catalogs
    recipients: dict[int, list[Recipient]]
    teams: dict[int, due.TeamRow]
    snaps: dict[str, str]
    cache: dict[str, Any] = field(default_factory=dict)

    async def overdue(self, s: AsyncSession) -> list[due.HouseholdDue]:
        """Today's overdue list, computed once per tick (the cadre and the leader rules share it)."""
        if "overdue" not in self.cache:
            self.cache["overdue"] = await due.overdue_households(s, self.today, self.rules.visits.cadence_days)
        rows: list[due.HouseholdDue] = self.cache["overdue"]
        return rows


@dataclass
class Plan:
    """Everything a tick will write, collected during the read phase."""

    messages: list[OutMessage] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)  # key -> value (run marks and snapshots)
    escalate: set[int] = field(default_factory=set)  # difficulty ids to raise to level 1
    mon_escalate: dict[int, int] = field(default_factory=dict)  # monitoring case id -> escalation level
    escalate_cases: set[int] = field(default_factory=set)  # case ids to raise to level 1 (cases_due)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _since_yield: int = 0

    async def breathe(self) -> None:
        """Let other tasks (the sender) run now and then while a big tick renders thousands of
        messages on the event loop."""
        self._since_yield += 1
        if self._since_yield >= 100:
            self._since_yield = 0
            await asyncio.sleep(0)

    def send(self, ctx: Context, person_id: int | None, rule: str, period: str,
             build: Callable[..., tuple[str | None, Any, Photo | None]]) -> None:
        """One message per reachable account of person, rendered in that account's language."""
        if person_id is None:
            return
        for rc in ctx.recipients.get(person_id, ()):
            t = ctx.catalogs.get(rc.lang)
            text, markup, photo = build(t)
            reply = Reply(chat_id=rc.chat_id, text=text, markup=markup, photo=photo, channel=rc.channel)
            self.messages.append(
                OutMessage(dedup_key=f"{rule}:{period}:a{rc.account_id}", reply=reply, rule=rule,
                           account_id=rc.account_id)
            )
            self.counts[rule] += 1


RuleFn = Callable[[AsyncSession, Context, Plan], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DueRule:
    rule: str
    period: str
    fn: RuleFn

    @property
    def mark(self) -> str:
        return f"run:{self.rule}:{self.period}"


def due_rules(rules: Rules, local: datetime) -> list[DueRule]:
    """The rules whose time has come today at local wall-clock time `local` (not in quiet hours).

    A rule whose hour passed while no scheduler ran still runs later the same day (catch-up), but
    never in quiet hours: a morning reminder written at night would arrive stale the next day.
    """
    today, now_t = local.date(), local.time().replace(tzinfo=None)
    if rules.quiet_hours.contains(now_t):
        return []
    if rules.calendar.is_holiday(today):
        # 放假: nobody is nagged or sent reports; an urgent difficulty past its deadline still is. (Its
        # deadline is counted in working days, so a holiday does not make it late.)
        # Villagers' cases likewise: their deadlines are working days too.
        late = [DueRule("diff", today.isoformat(), _difficulties)] if now_t >= rules.difficulties.check_at else []
        if now_t >= rules.cases.check_at:
            late.append(DueRule("cases", today.isoformat(), run_cases))
        return late
    out: list[DueRule] = []
    wd = today.isoweekday()
    week = due.iso_week_label(today)
    vd, vs, ss = rules.village_days, rules.visits, rules.seasons

    def at(t: time) -> bool:
        return now_t >= t

    if wd == vd.plan_weekday and at(vd.plan_at):
        out.append(DueRule("vd.plan", week, _vd_plan))
    if wd == vd.nudge_weekday and at(vd.nudge_at) and vd.target > 0:
        out.append(DueRule("vd.nudge", week, _vd_nudge))
    if wd == vd.shortfall_weekday and at(vd.shortfall_at) and vd.target > 0:
        out.append(DueRule("vd.shortfall", due.iso_week_label(today - timedelta(days=7)), _vd_shortfall))
    if at(vs.cadre_reminder_at):
        out.append(DueRule("visit.cadre", today.isoformat(), _visit_cadre))
    if at(vs.leader_alert_at):
        out.append(DueRule("visit.leader", today.isoformat(), _visit_leader))
    for name, window in ss.windows().items():
        first, last = window.dates(today.year)
        mid = first + timedelta(days=(last - first).days // 2)
        period = f"{name}-{today.year}"
        if today == first and at(ss.open_at):
            out.append(DueRule(f"season.open.{name}", period, _season_open(name, first, last)))
        if today == mid and at(ss.nudge_at) and mid != first:
            out.append(DueRule(f"season.nudge.{name}", period, _season_nudge(name, first, last)))
        # The close alert is due the day after the last day, which is next year for a window
        # ending on 31 December.
        for year in (today.year, today.year - 1):
            c_first, c_last = window.dates(year)
            if today == c_last + timedelta(days=1) and at(ss.close_at):
                out.append(DueRule(f"season.close.{name}", f"{name}-{year}", _season_close(name, c_first, c_last)))
    if at(rules.difficulties.check_at):
        out.append(DueRule("diff", today.isoformat(), _difficulties))
    m = rules.monitoring
    if at(m.check_at):
        out.append(DueRule("mon", today.isoformat(), _monitoring))
        if today.day == m.monthly_day:
            out.append(DueRule("mon.month", f"{today:%Y-%m}", _monitoring_month))
        if wd == m.weekly_weekday:
            out.append(DueRule("mon.week", due.iso_week_label(today - timedelta(days=7)), _monitoring_week))
    if at(rules.cases.check_at):
        out.append(DueRule("cases", today.isoformat(), run_cases))
    if wd == rules.digest.weekday and at(rules.digest.at):
        out.append(DueRule("digest", due.iso_week_label(today - timedelta(days=7)), _digest))
    return out


# --- village days ------------------------------------------------------------------------------


async def _vd_plan(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    monday, _ = due.iso_week_bounds(ctx.today)
    rows = await due.cadre_weeks(s, monday, upto=ctx.today)
    target = ctx.rules.village_days.target
    period = due.iso_week_label(ctx.today)
    for r in rows:
        await plan.breathe()
        if r.on_leave:
            continue
        plan.send(ctx, r.cadre_id, "vd.plan", period,
                  lambda t: (t("sched.vd.plan", target=target), render.checkin_button(t), None))


async def _vd_nudge(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    monday, _ = due.iso_week_bounds(ctx.today)
    target = ctx.rules.village_days.target
    rows = await due.cadre_weeks(s, monday, upto=ctx.today, below=target)
    period = due.iso_week_label(ctx.today)
    for r in rows:
        await plan.breathe()
        if r.on_leave:
            continue
        plan.send(ctx, r.cadre_id, "vd.nudge", period, lambda t, r=r: (
            t("sched.vd.nudge", days=r.checkin_days, missing=target - r.checkin_days, target=target),
            render.checkin_button(t), None))


async def _vd_shortfall(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    last_week = ctx.today - timedelta(days=7)
    monday, sunday = due.iso_week_bounds(last_week)
    target = ctx.rules.village_days.target
    rows = await due.cadre_weeks(s, monday, below=target)
    period = due.iso_week_label(last_week)
    for team_id, grp in groupby(rows, key=lambda r: r.team_id):
        await plan.breathe()
        team = ctx.teams.get(team_id) if team_id is not None else None
        if team is None:
            continue
        items = list(grp)
        plan.send(ctx, team.leader_id, "vd.shortfall", period, lambda t, items=items: (
            render.join_limited(
                t,
                t("sched.vd.shortfall.head", start=monday.isoformat(), end=sunday.isoformat(), target=target,
                  count=len(items)),
                [t("sched.vd.shortfall.line", name=r.cadre_name, days=r.checkin_days,
                   note=render.leave_note(t, r.on_leave, r.covered_by)) for r in items],
            ), None, None))


# --- visit cadence -----------------------------------------------------------------------------


async def _visit_cadre(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    cadence = ctx.rules.visits.cadence_days
    rows = await ctx.overdue(s)
    period = ctx.today.isoformat()
    for _cid, grp in groupby(rows, key=lambda r: r.cadre_id):
        await plan.breathe()
        items = list(grp)
        if items[0].on_leave:
            continue  # not nagged on leave; the leader's alert shows who covers
        plan.send(ctx, items[0].cadre_id, "visit.cadre", period, lambda t, items=items: (
            render.join_limited(t, t("sched.visit.cadre.head", cadence=cadence, count=len(items)),
                                render.household_lines(t, items, overdue=True)),
            render.visit_buttons(t, items), None))


def _digest_of(rows: list[due.HouseholdDue]) -> str:
    # What "changed" means for the leader: the set of overdue households and who has them, not the
    # day counts (those grow every day and would make every alert "new").
    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: r.household_id):
        h.update(f"{r.household_id}:{r.cadre_id}:{int(r.on_leave)};".encode())
    return h.hexdigest()[:32]


async def _visit_leader(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    cadence = ctx.rules.visits.cadence_days
    rows = await ctx.overdue(s)
    period = ctx.today.isoformat()
    by_team: dict[int, list[due.HouseholdDue]] = defaultdict(list)
    for r in rows:
        if r.team_id is not None:
            by_team[r.team_id].append(r)
    for team in ctx.teams.values():
        await plan.breathe()
        if team.leader_id is None:
            continue
        items = by_team.get(team.id, [])
        key = f"snap:visit.leader:{team.leader_id}:{team.id}"
        digest = _digest_of(items) if items else ""
        if ctx.snaps.get(key, "") == digest:
            continue  # nothing changed since the last alert (or still nothing overdue)
        plan.marks[key] = digest
        if not items:
            plan.send(ctx, team.leader_id, "visit.leader", f"{period}:t{team.id}",
                      lambda t: (t("sched.visit.leader.cleared"), None, None))
            continue
        plan.send(ctx, team.leader_id, "visit.leader", f"{period}:t{team.id}", lambda t, items=items: (
            render.join_limited(
                t, t("sched.visit.leader.head", date=period, count=len(items), cadence=cadence),
                render.grouped_overdue_lines(t, items), more_key="sched.more"),
            None, None))


# --- seasonal windows --------------------------------------------------------------------------


def _season_kind(ctx: Context, name: str) -> str | None:
    return name if ctx.rules.visits.require_seasonal_kind else None


def _season_open(name: str, first: date, last: date) -> RuleFn:
    async def run(s: AsyncSession, ctx: Context, plan: Plan) -> None:
        rows = await due.season_missing(s, first, ctx.today, ctx.today, kind=_season_kind(ctx, name))
        await _cadre_season_messages(ctx, plan, rows, f"season.open.{name}", "sched.season.open", name, first, last)
    return run


def _season_nudge(name: str, first: date, last: date) -> RuleFn:
    async def run(s: AsyncSession, ctx: Context, plan: Plan) -> None:
        rows = await due.season_missing(s, first, ctx.today, ctx.today, kind=_season_kind(ctx, name))
        await _cadre_season_messages(ctx, plan, rows, f"season.nudge.{name}", "sched.season.nudge", name, first, last)
    return run


async def _cadre_season_messages(ctx: Context, plan: Plan, rows: list[due.HouseholdDue], rule: str, key: str,
                           name: str, first: date, last: date) -> None:
    period = f"{name}-{first.year}"
    for _cid, grp in groupby(rows, key=lambda r: r.cadre_id):
        await plan.breathe()
        items = list(grp)
        if items[0].on_leave:
            continue
        plan.send(ctx, items[0].cadre_id, rule, period, lambda t, items=items: (
            render.join_limited(
                t, t(key, season=t(f"sched.season.{name}"), start=first.isoformat(), end=last.isoformat(),
                     count=len(items)),
                render.household_lines(t, items, overdue=False)),
            render.visit_buttons(t, items), None))


def _season_close(name: str, first: date, last: date) -> RuleFn:
    async def run(s: AsyncSession, ctx: Context, plan: Plan) -> None:
        rows = await due.season_missing(s, first, last, ctx.today, kind=_season_kind(ctx, name))
        period = f"{name}-{first.year}"
        for team_id, grp in groupby(rows, key=lambda r: r.team_id):
            await plan.breathe()
            team = ctx.teams.get(team_id) if team_id is not None else None
            if team is None:
                continue
            items = list(grp)
            plan.send(ctx, team.leader_id, f"season.close.{name}", period, lambda t, items=items: (
                render.join_limited(
                    t, t("sched.season.close.head", season=t(f"sched.season.{name}"), start=first.isoformat(),
                         end=last.isoformat(), count=len(items)),
                    render.missed_lines(t, items)),
                None, None))
    return run


# --- difficulties ------------------------------------------------------------------------------


async def _difficulties(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    cal = ctx.rules.difficulties
    rows = await due.late_difficulties(s, ctx.today, ctx.rules)
    for d in rows:
        await plan.breathe()
        team = ctx.teams.get(d.team_id) if d.team_id is not None else None
        if team is None:
            continue
        if d.ack_late:
            plan.send(ctx, team.leader_id, "diff.ack", f"d{d.id}", lambda t, d=d: (
                t("sched.diff.ack", days=cal.ack_working_days, line=Safe(render.difficulty_line(t, d))),
                None, None))
        if d.decide_late:
            if d.escalation_level < 1:
                plan.escalate.add(d.id)
            plan.send(ctx, team.township_contact_id, "diff.decide", f"d{d.id}", lambda t, d=d, team=team: (
                t("sched.diff.decide.township", days=cal.decide_working_days, team=team.name,
                  line=Safe(render.difficulty_line(t, d))), None, None))
            plan.send(ctx, team.leader_id, "diff.decide", f"d{d.id}", lambda t, d=d, team=team: (
                t("sched.diff.decide.leader", days=cal.decide_working_days,
                  line=Safe(render.difficulty_line(t, d))), None, None))


# --- monitoring (issue 14) --------------------------------------------------------------------


async def _monitoring(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    from bot.scheduler import monitor_tick

    await monitor_tick.daily(s, ctx, plan)


async def _monitoring_month(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    from bot.scheduler import monitor_tick

    await monitor_tick.monthly(s, ctx, plan)


async def _monitoring_week(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    from bot.scheduler import monitor_tick

    await monitor_tick.weekly(s, ctx, plan, due.iso_week_label(ctx.today - timedelta(days=7)))


# --- weekly digest -----------------------------------------------------------------------------


async def _digest(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    from bot.scheduler.reports import build_digests

    await build_digests(s, ctx, plan)


# --- the tick ----------------------------------------------------------------------------------


async def load_recipients(s: AsyncSession) -> dict[int, list[Recipient]]:
    """Every reachable account bound to a person, by person id (one query). A person bound on several
    channels who chose one for reminders (Person.preferred_channel) gets them there only, while an
    account on that channel is reachable; otherwise on every channel."""
    stmt = (
        select(Account.person_id, Account.id, Account.chat_id, Account.channel, Account.language, Person.language,
               Person.preferred_channel)
        .join(Person, Person.id == Account.person_id)
        .where(Account.person_id.is_not(None), Account.unreachable.is_(False), Person.active.is_(True))
        .order_by(Account.id)
    )
    out: dict[int, list[Recipient]] = defaultdict(list)
    preferred: dict[int, str] = {}
    for pid, aid, chat, channel, alang, plang, pref in (await s.execute(stmt)).all():
        if pid is not None:
            out[pid].append(Recipient(pid, aid, chat, channel, alang or plang))
            if pref:
                preferred[pid] = pref
    for pid, channel in preferred.items():
        chosen = [r for r in out[pid] if r.channel == channel]
        if chosen:
            out[pid] = chosen
    return out


async def _upsert_marks(s: AsyncSession, marks: dict[str, str], now: datetime) -> None:
    if not marks:
        return
    table = MARKS
    ins = postgresql.insert(table) if s.get_bind().dialect.name == "postgresql" else sqlite.insert(table)
    stmt = ins.on_conflict_do_update(index_elements=["key"], set_={"value": ins.excluded.value,
                                                                   "updated_at": ins.excluded.updated_at})
    await s.execute(stmt, [{"key": k, "value": v, "updated_at": now} for k, v in marks.items()])


@dataclass
class TickResult:
    ran: list[str]
    written: int  # new outbox rows (duplicates of an earlier or concurrent tick not counted)
    counts: dict[str, int]


async def run_tick(sessions: async_sessionmaker[AsyncSession], rules: Rules, catalogs: Catalogs,
                   now: datetime, *, draft_keep_days: int = 7) -> TickResult:
    """Run every rule due at `now` that has not run for its period yet; write the outbox."""
    local = now.astimezone(rules.tz)
    candidates = due_rules(rules, local)
    if not candidates:
        return TickResult([], 0, {})
    plan = Plan()
    async with sessions() as s, s.begin():
        done = set((await s.scalars(
            select(SchedulerMark.key).where(SchedulerMark.key.in_([c.mark for c in candidates]))
        )).all())
        todo = [c for c in candidates if c.mark not in done]
        if not todo:
            return TickResult([], 0, {})
        snaps: dict[str, str] = dict((await s.execute(
            select(SchedulerMark.key, SchedulerMark.value).where(SchedulerMark.key.like("snap:%"))
        )).all())
        ctx = Context(now, local.date(), rules, catalogs, await load_recipients(s), await due.teams(s), snaps)
        for c in todo:
            await c.fn(s, ctx, plan)
            plan.marks[c.mark] = "done"
    async with sessions() as s, s.begin():
        written = await enqueue(s, plan.messages, now=now, quiet=rules)
        if plan.escalate:
            await s.execute(update(Difficulty).where(Difficulty.id.in_(sorted(plan.escalate)),
                                                     Difficulty.escalation_level < 1)
                            .values(escalation_level=1).execution_options(synchronize_session=False))
        for level in sorted(set(plan.mon_escalate.values())):
            ids = sorted(k for k, v in plan.mon_escalate.items() if v == level)
            for i in range(0, len(ids), 5000):
                await s.execute(update(MonitorCase).where(MonitorCase.id.in_(ids[i : i + 5000]),
                                                          MonitorCase.escalation_level < level)
                                .values(escalation_level=level).execution_options(synchronize_session=False))
        if plan.escalate_cases:
            await s.execute(update(Case).where(Case.id.in_(sorted(plan.escalate_cases)), Case.escalation_level < 1)
                            .values(escalation_level=1).execution_options(synchronize_session=False))
        await _upsert_marks(s, plan.marks, now)
        if any(c.rule == "visit.cadre" for c in todo):  # once a day: retention
            await prune(s, now=now)
            await prune_processed_updates(s, now=now)
            await prune_stale_dialogs(s, now=now, keep_days=draft_keep_days)
            await prune_rate_limits(s, now=now)
            await prune_rebind_requests(s, now=now)
            await s.execute(delete(MARKS).where(
                MARKS.c.key.like("run:%"),
                MARKS.c.updated_at < now - timedelta(days=400)))
    log.info("tick %s: ran %s, %d new outbox rows", local.isoformat(timespec="minutes"),
             [c.rule for c in todo], written)
    return TickResult([c.rule for c in todo], written, dict(plan.counts))

