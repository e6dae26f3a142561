"""Monitoring reminders (issue 14), computed set-based for the whole county in a few queries:

- daily (`mon`): every open case whose step is due today or overdue goes to the step's owner (the
  paired cadre, the village's team leader, the township or county officers); a step overdue
  `escalate_after_working_days` working days also goes to the level above (and twice that: above
  again), and the case's escalation level is raised. One message per person per day, deduplicated.
- monthly (`mon.month`): each team leader gets the village's open cases per step and how many are
  overdue.
- weekly (`mon.week`): township and county officers get their area's cases per step, overdue, opened
  and closed last week.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Safe, Translator
from bot.scheduler.rules import Rules
from bot.services.monitoring import NEXT_LEVEL, PRIMARY
from bot.store.enums import MonitorStep, Role
from bot.store.models import MonitorCase, Pairing, Person, Team, Village

if TYPE_CHECKING:
    from bot.scheduler.tick import Context, Plan

MAX_LINES = 30
CHUNK = 5000


@dataclass(frozen=True, slots=True)
class DueCase:
    id: int
    step: str
    step_due: date
    level: int
    household_id: int | None
    village_id: int
    head_name: str


def working_days_late(rules: Rules, due: date, today: date) -> int:
    """Working days from the due date (exclusive) to today (inclusive)."""
    n, d = 0, due
    while d < today:
        d += timedelta(days=1)
        if rules.calendar.is_working_day(d):
            n += 1
    return n


@dataclass
class Area:
    """Who is responsible where: loaded once per tick in four queries."""

    cadres: dict[int, list[int]]  # household -> paired cadres
    leaders: dict[int, list[int]]  # village -> team leaders
    townships: dict[tuple[str, str], list[int]]  # (county, township) -> township officers
    counties: dict[str, list[int]]  # county -> county officers
    villages: dict[int, tuple[str, str, str]]  # village -> (name, county, township)

    def people(self, role: Role, household_id: int | None, village_id: int) -> list[int]:
        _, county, township = self.villages.get(village_id, ("", "", ""))
        if role is Role.CADRE:
            found = self.cadres.get(household_id, []) if household_id is not None else []
            return found or self.leaders.get(village_id, [])
        if role is Role.LEADER:
            return self.leaders.get(village_id, [])
        if role is Role.TOWNSHIP:
            return self.townships.get((county, township), [])
        return self.counties.get(county, [])


async def load_area(s: AsyncSession, household_ids: Iterable[int]) -> Area:
    villages = {r[0]: (r[1], r[2], r[3]) for r in (await s.execute(
        select(Village.id, Village.name, Village.county, Village.township))).all()}
    leaders: dict[int, list[int]] = defaultdict(list)
    for vid, pid in (await s.execute(select(Team.village_id, Team.leader_id).where(Team.leader_id.is_not(None)))).all():
        if vid is not None and pid is not None:
            leaders[vid].append(pid)
    townships: dict[tuple[str, str], list[int]] = defaultdict(list)
    counties: dict[str, list[int]] = defaultdict(list)
    q = (select(Person.id, Person.role, Person.village_id)
         .where(Person.role.in_([Role.TOWNSHIP.value, Role.COUNTY.value]), Person.active.is_(True)))
    for pid, role, vid in (await s.execute(q)).all():
        if vid not in villages:
            continue
        _, county, township = villages[vid]
        if role == Role.TOWNSHIP.value:
            townships[(county, township)].append(pid)
        else:
            counties[county].append(pid)
    cadres: dict[int, list[int]] = defaultdict(list)
    ids = sorted(set(household_ids))
    for i in range(0, len(ids), CHUNK):
        q2 = select(Pairing.household_id, Pairing.cadre_id).where(
            Pairing.household_id.in_(ids[i : i + CHUNK]), Pairing.end_date.is_(None))
        for hid, cid in (await s.execute(q2)).all():
            cadres[hid].append(cid)
    return Area(cadres, leaders, townships, counties, villages)


async def due_cases(s: AsyncSession, today: date) -> list[DueCase]:
    """Open cases whose step is due today or overdue (the open/step_due index)."""
    q = (select(MonitorCase.id, MonitorCase.step, MonitorCase.step_due, MonitorCase.escalation_level,
                MonitorCase.household_id, MonitorCase.village_id, MonitorCase.head_name)
         .where(MonitorCase.open.is_(True), MonitorCase.step_due <= today)
         .order_by(MonitorCase.step_due, MonitorCase.id))
    return [DueCase(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in (await s.execute(q)).all()
            if r[2] is not None]


def levels_for(rules: Rules, c: DueCase, today: date) -> int:
    """0: due or late (the owner); 1: the level above too; 2: two levels above too."""
    if c.step_due >= today:
        return 0
    after = rules.monitoring.escalate_after_working_days
    late = working_days_late(rules, c.step_due, today)
    if after <= 0:
        return 2
    return min(late // after, 2)


async def sweep(s: AsyncSession, rules: Rules, today: date) -> tuple[dict[int, list[tuple[DueCase, int]]], dict[int, int]]:
    """(person -> [(case, level it reached them at)], case -> new escalation level)."""
    cases = await due_cases(s, today)
    area = await load_area(s, (c.household_id for c in cases if c.household_id is not None))
    out: dict[int, list[tuple[DueCase, int]]] = defaultdict(list)
    raise_to: dict[int, int] = {}
    for c in cases:
        role = PRIMARY.get(MonitorStep(c.step))
        if role is None:
            continue
        top = levels_for(rules, c, today)
        seen: set[int] = set()
        for level in range(top + 1):
            for pid in area.people(role, c.household_id, c.village_id):
                if pid not in seen:
                    seen.add(pid)
                    out[pid].append((c, level))
            role = NEXT_LEVEL.get(role, role)
        if top > c.level:
            raise_to[c.id] = top
    return out, raise_to


def _case_line(t: Translator, c: DueCase, level: int, today: date) -> str:
    key = "mon.sched.line_due" if c.step_due >= today else ("mon.sched.line_late" if level == 0 else
                                                            "mon.sched.line_escalated")
    return t(key, id=c.id, name=c.head_name or "-", step=t(f"mon.step.{c.step}"), due=c.step_due.isoformat())


async def daily(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    per_person, raise_to = await sweep(s, ctx.rules, ctx.today)
    plan.mon_escalate.update(raise_to)
    today = ctx.today
    for pid, items in per_person.items():
        await plan.breathe()

        def build(t: Translator, items: Sequence[tuple[DueCase, int]] = items) -> tuple[str, Any, None]:
            lines = [t("mon.sched.daily_head", n=len(items))]
            lines += [_case_line(t, c, lv, today) for c, lv in items[:MAX_LINES]]
            if len(items) > MAX_LINES:
                lines.append(t("mon.sched.more", n=len(items) - MAX_LINES))
            return t("cadre.raw", text=Safe("\n".join(lines))), None, None

        plan.send(ctx, pid, "mon.due", today.isoformat(), build)


async def step_counts(s: AsyncSession, today: date) -> dict[int, dict[str, tuple[int, int]]]:
    """village -> step -> (open cases, overdue), in one grouped query."""
    late = func.sum(case((and_(MonitorCase.step_due.is_not(None), MonitorCase.step_due < today), 1), else_=0))
    q = (select(MonitorCase.village_id, MonitorCase.step, func.count(), late)
         .where(MonitorCase.open.is_(True)).group_by(MonitorCase.village_id, MonitorCase.step))
    out: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for vid, step, n, k in (await s.execute(q)).all():
        out[vid][step] = (int(n), int(k or 0))
    return out


def _summary(t: Translator, counts: dict[str, tuple[int, int]]) -> list[str]:
    order = [st.value for st in MonitorStep]
    return [t("mon.sched.step_count", step=t(f"mon.step.{st}"), n=counts[st][0], late=counts[st][1])
            for st in order if st in counts]


async def monthly(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    counts = await step_counts(s, ctx.today)
    area = await load_area(s, ())
    per_leader: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for vid, steps in counts.items():
        for pid in area.leaders.get(vid, []):
            merged = per_leader[pid]
            for st, (n, k) in steps.items():
                a, b = merged.get(st, (0, 0))
                merged[st] = (a + n, b + k)
    period = f"{ctx.today:%Y-%m}"
    for pid, steps in per_leader.items():
        def build(t: Translator, steps: dict[str, tuple[int, int]] = steps) -> tuple[str, Any, None]:
            lines = [t("mon.sched.monthly_head", month=period), *_summary(t, steps)]
            return t("cadre.raw", text=Safe("\n".join(lines))), None, None

        plan.send(ctx, pid, "mon.month", period, build)


async def weekly(s: AsyncSession, ctx: Context, plan: Plan, week: str) -> None:
    counts = await step_counts(s, ctx.today)
    area = await load_area(s, ())
    since = ctx.now - timedelta(days=7)
    moved: dict[int, tuple[int, int]] = {}
    q = (select(MonitorCase.village_id,
                func.sum(case((MonitorCase.opened_at >= since, 1), else_=0)),
                func.sum(case((and_(MonitorCase.closed_at.is_not(None), MonitorCase.closed_at >= since), 1),
                              else_=0)))
         .group_by(MonitorCase.village_id))
    for vid, opened, closed in (await s.execute(q)).all():
        moved[vid] = (int(opened or 0), int(closed or 0))
    per: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    news: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for vid in set(counts) | set(moved):
        _, county, township = area.villages.get(vid, ("", "", ""))
        people = [*area.townships.get((county, township), []), *area.counties.get(county, [])]
        for pid in people:
            for st, (n, k) in counts.get(vid, {}).items():
                a, b = per[pid].get(st, (0, 0))
                per[pid][st] = (a + n, b + k)
            o, c = moved.get(vid, (0, 0))
            news[pid][0] += o
            news[pid][1] += c
    for pid in set(per) | set(news):
        def build(t: Translator, pid: int = pid) -> tuple[str, Any, None]:
            o, c = news.get(pid, [0, 0])
            lines = [t("mon.sched.weekly_head", week=week, opened=o, closed=c), *_summary(t, per.get(pid, {}))]
            return t("cadre.raw", text=Safe("\n".join(lines))), None, None

        plan.send(ctx, pid, "mon.week", week, build)


async def tell_villages(s: AsyncSession, rules: Rules, catalogs: Any, now: datetime, today: date,
                        new_cases: dict[int, list[tuple[int, str]]], department: str) -> int:
    """Department matches: each village's team leader is told at once,
    through the outbox (one message per person per import day and department)."""
    from bot.scheduler.outbox import enqueue
    from bot.scheduler.tick import Context, Plan, load_recipients

    area = await load_area(s, ())
    ctx = Context(now, today, rules, catalogs, await load_recipients(s), {}, {})
    plan = Plan()
    for vid, cases in new_cases.items():
        for pid in area.leaders.get(vid, []):
            def build(t: Translator, cases: list[tuple[int, str]] = cases) -> tuple[str, Any, None]:
                lines = [t("mon.sched.department", department=department, n=len(cases))]
                lines += [t("mon.sched.department_line", id=i, name=n) for i, n in cases[:MAX_LINES]]
                if len(cases) > MAX_LINES:
                    lines.append(t("mon.sched.more", n=len(cases) - MAX_LINES))
                return t("cadre.raw", text=Safe("\n".join(lines))), None, None

            plan.send(ctx, pid, "mon.dept", f"{department}:{today.isoformat()}:v{vid}", build)
    return await enqueue(s, plan.messages, now=now, quiet=rules)
