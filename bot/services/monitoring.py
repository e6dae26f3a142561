"""防止返贫动态监测和帮扶: the monitoring case, its step machine and closing rules (issue 14).

Every transition checks that the actor's role owns the case's current step, that the case is in the
actor's area, and that the step is the one the button was made for (in order); a refusal raises
`Refused` with a message key and writes an audit row. State changes append a `MonitorEvent` (who, what,
when, result); nothing is ever deleted. Helpers never commit: the caller's transaction does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler.monitor_rules import add_working_days, months_between
from bot.scheduler.rules import Rules
from bot.services.privacy import stored_text
from bot.store.enums import MonitorPhase, MonitorSource, MonitorStep, Role
from bot.store.idhash import id_hash, mask_id, normalize_id
from bot.store.models import (
    AuditLog,
    Household,
    MonitorCase,
    MonitorEvent,
    MonitorMeasure,
    Pairing,
    Person,
    Team,
    Village,
)

S = MonitorStep
IDENTIFY_ORDER: tuple[MonitorStep, ...] = (
    S.ACCEPT, S.VERIFY, S.COMPARE, S.ASSESS, S.PUBLICIZE, S.TOWNSHIP, S.COUNTY, S.ANNOUNCE, S.MEASURES, S.FOLLOW_UP,
)
CLOSE_ORDER: tuple[MonitorStep, ...] = (
    S.VERIFY, S.COMPARE, S.ASSESS, S.PUBLICIZE, S.TOWNSHIP, S.COUNTY, S.ANNOUNCE, S.CLOSED,
)
# Who moves each step (the admin moves none: the process is the officers').
OWNERS: dict[MonitorStep, frozenset[Role]] = {
    S.ACCEPT: frozenset({Role.TOWNSHIP}),
    S.VERIFY: frozenset({Role.CADRE, Role.LEADER}),
    S.COMPARE: frozenset({Role.COUNTY}),
    S.ASSESS: frozenset({Role.LEADER}),
    S.PUBLICIZE: frozenset({Role.LEADER}),
    S.TOWNSHIP: frozenset({Role.TOWNSHIP}),
    S.COUNTY: frozenset({Role.COUNTY}),
    S.ANNOUNCE: frozenset({Role.LEADER}),
    S.MEASURES: frozenset({Role.CADRE, Role.LEADER}),
    S.FOLLOW_UP: frozenset({Role.CADRE, Role.LEADER}),
}
# Review steps: approve, send back (to the home check) or reject, each with a reason.
REVIEW_STEPS = frozenset({S.ACCEPT, S.COMPARE, S.ASSESS, S.TOWNSHIP, S.COUNTY})
# The level above each owner, for overdue steps.
NEXT_LEVEL: dict[Role, Role] = {Role.CADRE: Role.LEADER, Role.LEADER: Role.TOWNSHIP, Role.TOWNSHIP: Role.COUNTY}
MONITOR_ROLES = frozenset({Role.CADRE, Role.LEADER, Role.TOWNSHIP, Role.COUNTY, Role.ADMIN})


class Refused(Exception):
    """A transition that may not happen; `key` is a message key, `args` its fields."""

    def __init__(self, key: str, **args: Any) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


# --------------------------------------------------------------------------- scope
async def in_scope(session: AsyncSession, person: Person, case: MonitorCase) -> bool:
    """Whether the case is in the person's area: a cadre's currently paired household, a leader's team
    village, a township officer's township, a county officer's county."""
    role = Role(person.role)
    if role is Role.ADMIN:
        return True
    if role is Role.CADRE:
        if case.household_id is None:
            return False
        q = select(Pairing.id).where(
            Pairing.cadre_id == person.id, Pairing.household_id == case.household_id, Pairing.end_date.is_(None)
        )
        return (await session.execute(q.limit(1))).first() is not None
    if role is Role.LEADER:
        q2 = select(Team.id).where(Team.village_id == case.village_id, Team.leader_id == person.id)
        if (await session.execute(q2.limit(1))).first() is not None:
            return True
        return person.village_id == case.village_id
    if role in (Role.TOWNSHIP, Role.COUNTY):
        if person.village_id is None:
            return False
        mine = await session.get(Village, person.village_id)
        theirs = await session.get(Village, case.village_id)
        if mine is None or theirs is None or mine.county != theirs.county:
            return False
        return role is Role.COUNTY or mine.township == theirs.township
    return False


async def _audit(session: AsyncSession, now: datetime, person: Person | None, action: str, case_id: int | None,
                 **detail: Any) -> None:
    session.add(AuditLog(at=now, actor_person_id=person.id if person else None, action=action,
                         entity="monitor_case", entity_id=case_id, detail=detail))


async def check_actor(session: AsyncSession, case: MonitorCase, person: Person, now: datetime,
                      step: str | None = None) -> None:
    """Refuse (and audit) unless the person's role owns the case's current step in their area, and the
    step is the one the button was made for."""
    role = Role(person.role)
    cur = MonitorStep(case.step)
    if not case.open:
        raise Refused("mon.refused.closed")
    if step is not None and step != case.step:
        await _audit(session, now, person, "monitor.out_of_order", case.id, pressed=step, current=case.step)
        raise Refused("mon.refused.order")
    if role not in OWNERS.get(cur, frozenset()):
        await _audit(session, now, person, "monitor.refused_role", case.id, step=case.step, role=role.value)
        raise Refused("mon.refused.role")
    if not await in_scope(session, person, case):
        await _audit(session, now, person, "monitor.refused_scope", case.id, step=case.step)
        raise Refused("mon.refused.scope")


# --------------------------------------------------------------------------- clocks
def step_due(rules: Rules, case: MonitorCase, step: MonitorStep, today: date) -> date | None:
    m = rules.monitoring
    wd = rules.calendar.is_working_day
    if step in (S.CLOSED, S.REJECTED):
        return None
    if step is S.ACCEPT:
        return add_working_days(today, m.accept_working_days, wd)
    if step is S.FOLLOW_UP:
        return (case.last_follow_up or today) + timedelta(days=m.follow_up_days)
    if step is S.PUBLICIZE:
        return add_working_days(today + timedelta(days=m.publicity_days), 1, wd)
    n = m.verify_working_days if step is S.VERIFY else m.step_working_days
    due = add_working_days(today, n, wd)
    if case.phase == MonitorPhase.IDENTIFY and case.identify_due is not None and step in IDENTIFY_ORDER[:7]:
        due = min(due, case.identify_due)
    return due


def _move(rules: Rules, case: MonitorCase, step: MonitorStep, today: date) -> None:
    case.step = step.value
    case.step_started = today
    case.step_due = step_due(rules, case, step, today)
    case.escalation_level = 0


def _event(session: AsyncSession, case: MonitorCase, now: datetime, person: Person | None, action: str,
           result: str = "", step: str | None = None, **detail: Any) -> None:
    # Whatever a person typed (a review's result, a reason; chat or web) is stored with ID numbers masked.
    session.add(MonitorEvent(case_id=case.id, at=now, actor_person_id=person.id if person else None,
                             phase=case.phase, step=step or case.step, action=action, result=stored_text(result),
                             detail=detail))


# --------------------------------------------------------------------------- opening
async def open_cases_for(session: AsyncSession, household_id: int) -> list[MonitorCase]:
    q = select(MonitorCase).where(MonitorCase.household_id == household_id, MonitorCase.open.is_(True))
    return list((await session.execute(q)).scalars())


async def open_case(
    session: AsyncSession,
    rules: Rules,
    now: datetime,
    today: date,
    *,
    village_id: int,
    source: MonitorSource,
    household_id: int | None = None,
    actor: Person | None = None,
    reporter_account_id: int | None = None,
    head_name: str = "",
    phone: str | None = None,
    id_number: str | None = None,
    id_key: str = "",
    risks: Sequence[str] = (),
    description: str = "",
    photo_file_id: str | None = None,
    department: str = "",
) -> MonitorCase:
    """A new case at its first step: a self-report waits for the township to accept it; a cadre's check
    or a department match starts at the home check. The identification clock starts today."""
    full = normalize_id(id_number or "")
    case = MonitorCase(
        household_id=household_id, village_id=village_id, source=source.value, department=department,
        risks=list(risks), phase=MonitorPhase.IDENTIFY.value, step=S.VERIFY.value, open=True,
        step_started=today, escalation_level=0, head_name=head_name, phone=phone,
        id_masked=mask_id(full) if full else None, id_hash=id_hash(full, id_key) if full else None,
        description=description, photo_file_id=photo_file_id,
        reporter_person_id=actor.id if actor else None, reporter_account_id=reporter_account_id,
        screening={}, expense_solved=False, guarantees_secured=False, opened_at=now,
    )
    case.identify_due = rules.monitoring.identify_due(today, rules.calendar.is_working_day)
    first = S.ACCEPT if source is MonitorSource.SELF_REPORT else S.VERIFY
    _move(rules, case, first, today)
    session.add(case)
    await session.flush()
    _event(session, case, now, actor, "open", description, source=source.value, department=department)
    return case


# --------------------------------------------------------------------------- the screening form
@dataclass
class Screening:
    """入户核实 form. Money in yuan per year; members' labour counted by the cadre."""

    members: int
    labour: int  # working-age members able to work
    income: dict[str, Decimal] = field(default_factory=dict)  # 工资性/经营性/财产性/转移性 …
    expenses: dict[str, Decimal] = field(default_factory=dict)  # rigid expenses: medical, schooling …
    guarantees: dict[str, bool] = field(default_factory=dict)  # education, medical, housing, water: secured?
    consent: bool = False  # signed consent (承诺授权书) noted
    kind: str | None = None  # MonitorKind


@dataclass(frozen=True)
class PerCapita:
    income: Decimal
    expenses: Decimal
    net: Decimal  # (income - rigid expenses) / members
    working: str  # the arithmetic, shown to the cadre
    line: Decimal | None
    below: bool | None  # None: no line set for the year


def per_capita(s: Screening, line: Decimal | None) -> PerCapita:
    inc = sum(s.income.values(), Decimal(0))
    exp = sum(s.expenses.values(), Decimal(0))
    members = max(s.members, 1)
    net = ((inc - exp) / members).quantize(Decimal("0.01"), ROUND_HALF_UP)
    parts = " + ".join(f"{v}" for v in s.income.values()) or "0"
    minus = " + ".join(f"{v}" for v in s.expenses.values()) or "0"
    working = f"({parts} − ({minus})) ÷ {members} = {net}"
    return PerCapita(inc, exp, net, working, line, None if line is None else net < line)


async def record_screening(session: AsyncSession, rules: Rules, case: MonitorCase, person: Person,
                           now: datetime, today: date, s: Screening) -> PerCapita:
    await check_actor(session, case, person, now, S.VERIFY.value)
    if not s.consent:
        raise Refused("mon.refused.consent")
    if s.members < 1 or s.labour < 0 or s.labour > s.members:
        raise Refused("mon.refused.members")
    pc = per_capita(s, rules.monitoring.income_line(today.year))
    case.screening = {
        "members": s.members, "labour": s.labour, "consent": s.consent,
        "income": {k: str(v) for k, v in s.income.items()},
        "expenses": {k: str(v) for k, v in s.expenses.items()},
        "guarantees": dict(s.guarantees), "working": pc.working, "on": today.isoformat(),
    }
    case.income_per_head = pc.net
    case.labour_count = s.labour
    case.guarantees_secured = bool(s.guarantees) and all(s.guarantees.values())
    case.expense_solved = not any(v > 0 for v in s.expenses.values())
    if s.kind:
        case.kind = s.kind
    _event(session, case, now, person, "screening", pc.working, net=str(pc.net))
    return pc


# --------------------------------------------------------------------------- transitions
async def measures_of(session: AsyncSession, case_id: int) -> list[MonitorMeasure]:
    q = select(MonitorMeasure).where(MonitorMeasure.case_id == case_id).order_by(MonitorMeasure.id)
    return list((await session.execute(q)).scalars())


async def approve(session: AsyncSession, rules: Rules, case: MonitorCase, person: Person, now: datetime,
                  today: date, *, step: str, result: str = "") -> MonitorStep:
    """Finish the current step and move to the next one; returns the new step."""
    await check_actor(session, case, person, now, step)
    cur = MonitorStep(case.step)
    phase = MonitorPhase(case.phase)
    if cur is S.FOLLOW_UP:
        raise Refused("mon.refused.use_close")
    if cur is S.VERIFY:
        if phase is MonitorPhase.IDENTIFY and not case.screening:
            raise Refused("mon.refused.no_screening")
        if phase is MonitorPhase.CLOSE:
            problems = await closing_problems(session, rules, case, today)
            if problems:
                raise Refused("mon.refused.not_closable", reasons=problems)
        if phase is MonitorPhase.IDENTIFY and not case.kind:
            raise Refused("mon.refused.no_kind")
    if cur is S.PUBLICIZE and today < case.step_started + timedelta(days=rules.monitoring.publicity_days):
        raise Refused("mon.refused.publicity", until=case.step_started + timedelta(days=rules.monitoring.publicity_days))
    if cur is S.MEASURES and not await measures_of(session, case.id):
        raise Refused("mon.refused.no_measure")
    order = IDENTIFY_ORDER if phase is MonitorPhase.IDENTIFY else CLOSE_ORDER
    nxt = order[order.index(cur) + 1]
    _event(session, case, now, person, "approve", result)
    if nxt is S.CLOSED:
        case.step = S.CLOSED.value
        case.step_due = None
        case.open = False
        case.closed_at = now
        await _household_status(session, case, "lifted")
        _event(session, case, now, person, "closed", result)
        return nxt
    if cur is S.COUNTY and phase is MonitorPhase.IDENTIFY:
        case.identified_on = today
        case.last_follow_up = None
        await _household_status(session, case, "monitored")
    _move(rules, case, nxt, today)
    return nxt


async def _household_status(session: AsyncSession, case: MonitorCase, status: str) -> None:
    if case.household_id is None:
        return
    hh = await session.get(Household, case.household_id)
    if hh is None:
        return
    if status == "monitored":
        case.screening = {**case.screening, "prior_status": hh.status}
        hh.status = "monitored"
    else:
        hh.status = str(case.screening.get("prior_status") or "lifted")


async def send_back(session: AsyncSession, rules: Rules, case: MonitorCase, person: Person, now: datetime,
                    today: date, *, step: str, reason: str) -> None:
    """A reviewer sends the case back to the home check, with the reason."""
    await check_actor(session, case, person, now, step)
    if MonitorStep(case.step) not in REVIEW_STEPS or case.step == S.ACCEPT:
        raise Refused("mon.refused.not_review")
    if not reason.strip():
        raise Refused("mon.refused.reason")
    _event(session, case, now, person, "send_back", reason)
    _move(rules, case, S.VERIFY, today)


async def reject(session: AsyncSession, rules: Rules, case: MonitorCase, person: Person, now: datetime,
                 today: date, *, step: str, reason: str) -> None:
    """A reviewer rejects: an identification ends (不纳入); a closing is refused and the household stays
    monitored."""
    await check_actor(session, case, person, now, step)
    if MonitorStep(case.step) not in REVIEW_STEPS:
        raise Refused("mon.refused.not_review")
    if not reason.strip():
        raise Refused("mon.refused.reason")
    _event(session, case, now, person, "reject", reason)
    if case.phase == MonitorPhase.CLOSE:
        case.phase = MonitorPhase.IDENTIFY.value
        _move(rules, case, S.FOLLOW_UP, today)
        return
    case.step = S.REJECTED.value
    case.step_due = None
    case.open = False
    case.closed_at = now


async def add_measure(session: AsyncSession, case: MonitorCase, person: Person, now: datetime, today: date,
                      *, topic: str, note: str = "", known_topics: Sequence[str] = ()) -> MonitorMeasure:
    await check_actor(session, case, person, now)
    if MonitorStep(case.step) not in (S.MEASURES, S.FOLLOW_UP):
        raise Refused("mon.refused.order")
    if known_topics and topic not in known_topics:
        raise Refused("mon.refused.topic")
    m = MonitorMeasure(case_id=case.id, topic=topic, note=note, started_on=today, actor_person_id=person.id,
                       created_at=now)
    session.add(m)
    _event(session, case, now, person, "measure", note, topic=topic)
    return m


async def follow_up(session: AsyncSession, rules: Rules, case: MonitorCase, person: Person, now: datetime,
                    today: date, *, income_per_head: Decimal, expense_solved: bool, guarantees_secured: bool,
                    labour: int | None = None, note: str = "") -> None:
    """The monthly follow-up visit: income and the household's problems as they stand today."""
    await check_actor(session, case, person, now, S.FOLLOW_UP.value)
    line = rules.monitoring.income_line(today.year)
    above = line is not None and income_per_head >= line
    if above and case.income_above_since is None:
        case.income_above_since = today
    elif not above:
        case.income_above_since = None
    case.income_per_head = income_per_head
    case.expense_solved = expense_solved
    case.guarantees_secured = guarantees_secured
    if labour is not None:
        case.labour_count = labour
    case.last_follow_up = today
    case.step_due = step_due(rules, case, S.FOLLOW_UP, today)
    case.escalation_level = 0
    _event(session, case, now, person, "follow_up", note, income=str(income_per_head), above=above)


async def closing_problems(session: AsyncSession, rules: Rules, case: MonitorCase, today: date) -> list[str]:
    """Why the risk cannot be closed yet (message keys); empty when the rules allow closing."""
    m = rules.monitoring
    out: list[str] = []
    measures = await measures_of(session, case.id)
    if case.identified_on is None or months_between(case.identified_on, today) < m.close_monitored_months:
        out.append("mon.close.too_soon")
    if len(measures) < m.close_min_measures:
        out.append("mon.close.no_measure")
    if m.income_line(today.year) is None:
        out.append("mon.close.no_line")
    elif case.income_above_since is None or months_between(case.income_above_since, today) < m.close_income_months:
        out.append("mon.close.income")
    if not case.expense_solved:
        out.append("mon.close.expense")
    if not case.guarantees_secured:
        out.append("mon.close.guarantees")
    if case.labour_count == 0 and not any(x.topic in m.no_labour_measures for x in measures):
        out.append("mon.close.no_labour")
    return out


async def request_close(session: AsyncSession, rules: Rules, case: MonitorCase, person: Person, now: datetime,
                        today: date, *, result: str = "") -> None:
    """Start closing the risk: only when the closing rules allow; then the same review steps."""
    await check_actor(session, case, person, now, S.FOLLOW_UP.value)
    problems = await closing_problems(session, rules, case, today)
    if problems:
        raise Refused("mon.refused.not_closable", reasons=problems)
    _event(session, case, now, person, "request_close", result)
    case.phase = MonitorPhase.CLOSE.value
    _move(rules, case, S.VERIFY, today)


async def history(session: AsyncSession, case_id: int) -> list[MonitorEvent]:
    q = select(MonitorEvent).where(MonitorEvent.case_id == case_id).order_by(MonitorEvent.at, MonitorEvent.id)
    return list((await session.execute(q)).scalars())


async def lock_case(session: AsyncSession, case_id: int) -> MonitorCase | None:
    """The case, locked for this transaction (PostgreSQL; SQLite's writer lock covers it)."""
    q = select(MonitorCase).where(MonitorCase.id == case_id).with_for_update()
    return (await session.execute(q)).scalar_one_or_none()


async def count_open(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).where(MonitorCase.open.is_(True)))).scalar_one())


# --------------------------------------------------------------------------- who is responsible
# The first owner of each step, told when the step starts; overdue goes to NEXT_LEVEL.
PRIMARY: dict[MonitorStep, Role] = {
    S.ACCEPT: Role.TOWNSHIP, S.VERIFY: Role.CADRE, S.COMPARE: Role.COUNTY, S.ASSESS: Role.LEADER,
    S.PUBLICIZE: Role.LEADER, S.TOWNSHIP: Role.TOWNSHIP, S.COUNTY: Role.COUNTY, S.ANNOUNCE: Role.LEADER,
    S.MEASURES: Role.CADRE, S.FOLLOW_UP: Role.CADRE,
}


async def people_for(session: AsyncSession, role: Role, household_id: int | None, village_id: int) -> list[Person]:
    """The people of a role responsible for a household / village."""
    active = Person.active.is_(True)
    if role is Role.CADRE:
        if household_id is None:
            return await people_for(session, Role.LEADER, None, village_id)
        q = (select(Person).join(Pairing, Pairing.cadre_id == Person.id)
             .where(Pairing.household_id == household_id, Pairing.end_date.is_(None), active))
        found = list((await session.execute(q)).scalars())
        return found or await people_for(session, Role.LEADER, None, village_id)
    if role is Role.LEADER:
        q = select(Person).join(Team, Team.leader_id == Person.id).where(Team.village_id == village_id, active)
        return list((await session.execute(q)).scalars().unique())
    v = await session.get(Village, village_id)
    if v is None:
        return []
    theirs = select(Village.id).where(Village.county == v.county)
    if role is Role.TOWNSHIP:
        theirs = theirs.where(Village.township == v.township)
    q = select(Person).where(Person.role == role.value, Person.village_id.in_(theirs), active).order_by(Person.id)
    return list((await session.execute(q)).scalars())


async def responsible(session: AsyncSession, case: MonitorCase, level: int = 0) -> list[Person]:
    """Who acts on the case's step (level 0), or the level(s) above when it is overdue."""
    step = MonitorStep(case.step)
    role = PRIMARY.get(step)
    if role is None:
        return []
    for _ in range(level):
        role = NEXT_LEVEL.get(role, role)
    return await people_for(session, role, case.household_id, case.village_id)


async def cases_in_scope(session: AsyncSession, person: Person, limit: int = 30) -> list[MonitorCase]:
    """Open cases in the person's area, those waiting for the person's role first, oldest due first."""
    role = Role(person.role)
    q = select(MonitorCase).where(MonitorCase.open.is_(True))
    if role is Role.CADRE:
        mine = select(Pairing.household_id).where(Pairing.cadre_id == person.id, Pairing.end_date.is_(None))
        q = q.where(MonitorCase.household_id.in_(mine))
    elif role is Role.LEADER:
        villages = select(Team.village_id).where(Team.leader_id == person.id)
        q = q.where((MonitorCase.village_id.in_(villages)) | (MonitorCase.village_id == person.village_id))
    elif role in (Role.TOWNSHIP, Role.COUNTY):
        v = await session.get(Village, person.village_id) if person.village_id else None
        if v is None:
            return []
        area = select(Village.id).where(Village.county == v.county)
        if role is Role.TOWNSHIP:
            area = area.where(Village.township == v.township)
        q = q.where(MonitorCase.village_id.in_(area))
    elif role is not Role.ADMIN:
        return []
    owned = [s.value for s, roles in OWNERS.items() if role in roles]
    rows = list((await session.execute(q.order_by(MonitorCase.step_due, MonitorCase.id).limit(500))).scalars())
    rows.sort(key=lambda c: (c.step not in owned, c.step_due or date.max, c.id))
    return rows[:limit]


async def recent_cases_with_measures(
    session: AsyncSession, household_id: int, n: int
) -> list[tuple[MonitorCase, list[MonitorMeasure]]]:
    """The household's first `n` cases in `cases_of_household`'s order, each with its measures (`measures_of`'s
    order), in one statement."""
    first = (select(MonitorCase.id).where(MonitorCase.household_id == household_id)
             .order_by(MonitorCase.open.desc(), MonitorCase.id.desc()).limit(n))
    q = (select(MonitorCase, MonitorMeasure)
         .outerjoin(MonitorMeasure, MonitorMeasure.case_id == MonitorCase.id)
         .where(MonitorCase.id.in_(first))
         .order_by(MonitorCase.open.desc(), MonitorCase.id.desc(), MonitorMeasure.id))
    out: dict[int, tuple[MonitorCase, list[MonitorMeasure]]] = {}
    for case, measure in (await session.execute(q)).all():
        entry = out.setdefault(case.id, (case, []))
        if measure is not None:
            entry[1].append(measure)
    return list(out.values())


async def cases_of_household(session: AsyncSession, household_id: int) -> list[MonitorCase]:
    """The household's cases, open ones first, newest first."""
    q = (select(MonitorCase).where(MonitorCase.household_id == household_id)
         .order_by(MonitorCase.open.desc(), MonitorCase.id.desc()))
    return list((await session.execute(q)).scalars())
