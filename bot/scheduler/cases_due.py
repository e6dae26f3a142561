"""Deadlines of villagers' cases ([cases] in the rules file), in working days like the difficulty ledger:
past the first-reply deadline the cadre is reminded and the team leader alerted; past the resolve
deadline the case escalates to the township contact (Case.escalation_level = 1) and the leader is told.
One message per case and rule (dedup key "case.reply:c<id>"), so a late case is not repeated daily."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.i18n import Safe, Translator
from bot.scheduler.due import _latest_breached, _local_midnight_utc, _run
from bot.scheduler.rules import Rules
from bot.store.enums import CaseStatus
from bot.store.models import Account, Case, Household, Person

if TYPE_CHECKING:
    from bot.scheduler.tick import Context, Plan


@dataclass(frozen=True, slots=True)
class LateCase:
    id: int
    team_id: int | None
    cadre_id: int | None
    cadre_name: str
    villager: str
    kind: str
    text: str
    escalation_level: int
    created_on: date  # local date
    reply_late: bool  # no first reply past the first-reply deadline
    resolve_late: bool  # not resolved past the resolve deadline


def late_conditions(today: date, rules: Rules) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(no first reply past its deadline, not resolved past its deadline) as SQL conditions on Case, for
    an unresolved case (the dashboard's overdue filter uses the same)."""
    cal, tz, limits = rules.calendar, rules.tz, rules.cases
    reply_cut = _local_midnight_utc(
        _latest_breached(today, limits.first_reply_working_days, cal) + timedelta(days=1), tz
    )
    resolve_cut = _local_midnight_utc(
        _latest_breached(today, limits.resolve_working_days, cal) + timedelta(days=1), tz
    )
    return and_(Case.first_reply_at.is_(None), Case.created_at < reply_cut), Case.created_at < resolve_cut


async def late_cases(session: AsyncSession, today: date, rules: Rules) -> list[LateCase]:
    """Unresolved cases past the first-reply or the resolve deadline (working days, local dates)."""
    tz = rules.tz
    reply_late, resolve_late = late_conditions(today, rules)
    cadre = aliased(Person)
    stmt = (
        select(
            Case.id, Case.team_id, Case.cadre_id, cadre.name, Household.head_name, Account.display_name,
            Case.kind, Case.text, Case.escalation_level, Case.created_at,
            reply_late.label("reply_late"), resolve_late.label("resolve_late"),
        )
        .outerjoin(cadre, cadre.id == Case.cadre_id)
        .outerjoin(Household, Household.id == Case.household_id)
        .outerjoin(Account, Account.id == Case.account_id)
        .where(Case.status != CaseStatus.RESOLVED.value, or_(reply_late, resolve_late))
        .order_by(Case.team_id, Case.created_at, Case.id)
    )
    return [
        LateCase(
            id=r[0], team_id=r[1], cadre_id=r[2], cadre_name=r[3] or "—", villager=r[4] or r[5] or "—",
            kind=r[6], text=r[7], escalation_level=r[8] or 0, created_on=r[9].astimezone(tz).date(),
            reply_late=bool(r[10]), resolve_late=bool(r[11]),
        )
        for r in (await _run(session, stmt)).all()
    ]


def case_line(t: Translator, c: LateCase) -> str:
    text = " ".join(c.text.split())
    return t(
        "sched.case.line", number=c.id, villager=c.villager, kind=t(f"case.kind.{c.kind}"),
        date=c.created_on.isoformat(), text=text if len(text) <= 60 else text[:59] + "…",
    )


async def run_cases(s: AsyncSession, ctx: Context, plan: Plan) -> None:
    """The daily check of case deadlines (rule "cases")."""
    limits = ctx.rules.cases
    for c in await late_cases(s, ctx.today, ctx.rules):
        await plan.breathe()
        team = ctx.teams.get(c.team_id) if c.team_id is not None else None
        leader_id = team.leader_id if team is not None else None
        if c.reply_late:
            plan.send(ctx, c.cadre_id, "case.reply", f"c{c.id}", lambda t, c=c: (
                t("sched.case.first_reply.cadre", days=limits.first_reply_working_days,
                  line=Safe(case_line(t, c))), None, None))
            if leader_id != c.cadre_id:
                plan.send(ctx, leader_id, "case.reply", f"c{c.id}", lambda t, c=c: (
                    t("sched.case.first_reply.leader", cadre=c.cadre_name, days=limits.first_reply_working_days,
                      line=Safe(case_line(t, c))), None, None))
        if c.resolve_late and team is not None:
            if c.escalation_level < 1:
                plan.escalate_cases.add(c.id)
            plan.send(ctx, team.township_contact_id, "case.resolve", f"c{c.id}", lambda t, c=c, team=team: (
                t("sched.case.resolve.township", team=team.name, days=limits.resolve_working_days,
                  line=Safe(case_line(t, c))), None, None))
            plan.send(ctx, leader_id, "case.resolve", f"c{c.id}", lambda t, c=c: (
                t("sched.case.resolve.leader", days=limits.resolve_working_days, line=Safe(case_line(t, c))),
                None, None))
