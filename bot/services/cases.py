"""Villagers' cases: a personal matter, a grievance, a hardship or a call-back request, tracked from the
villager's message to the cadre's answer. Business rules only; the chat side is bot/handlers/cases.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.people import cadre_for_household, can_see_household
from bot.services.privacy import stored_text
from bot.store.enums import CaseKind, CaseStatus, Role
from bot.store.models import Account, Case, Household, Pairing, Person, PolicyQuestion, Team

# 18-digit resident ID numbers (the last may be X) and 15-digit old ones, not inside a longer number.


def storable_text(text: str) -> str:
    """The text as it may be stored: ID numbers masked to their last four characters (the one privacy
    rule for free text, `bot.services.privacy.stored_text`)."""
    return stored_text(text)


@dataclass(frozen=True, slots=True)
class Opened:
    case: Case
    created: bool  # False: this idempotency key had made the case already


async def open_case(
    session: AsyncSession,
    *,
    idem_key: str,
    account: Account,
    kind: CaseKind,
    text: str,
    now: datetime,
    topic: str = "none",
    hardship: bool = False,
    question_id: int | None = None,
) -> Opened:
    """Record a case for the villager's household and its currently paired cadre (once per idem_key)."""
    existing = (await session.execute(select(Case).where(Case.idem_key == idem_key))).scalar_one_or_none()
    if existing is not None:
        return Opened(existing, False)
    household = await session.get(Household, account.household_id) if account.household_id else None
    cadre = await cadre_for_household(session, household.id) if household is not None else None
    team_id = cadre.team_id if cadre is not None else None
    if team_id is None and household is not None:
        team_id = (
            await session.execute(select(Team.id).where(Team.village_id == household.village_id).limit(1))
        ).scalar_one_or_none()
    case = Case(
        idem_key=idem_key,
        account_id=account.id,
        household_id=household.id if household else None,
        cadre_id=cadre.id if cadre else None,
        team_id=team_id,
        question_id=question_id,
        kind=kind.value,
        hardship=hardship or kind is CaseKind.HARDSHIP,
        topic=topic or "none",
        text=storable_text(text),
        status=CaseStatus.OPEN.value,
        escalation_level=0,
        reply_text="",
        resolution_note="",
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    return Opened(case, True)


async def leads(session: AsyncSession, person_id: int, team_id: int | None) -> bool:
    """Whether the person leads (or is the township contact of) the team."""
    if team_id is None:
        return False
    team = await session.get(Team, team_id)
    return team is not None and person_id in (team.leader_id, team.township_contact_id)


async def can_handle(session: AsyncSession, person_id: int | None, role: Role, case: Case) -> bool:
    """A cadre handles cases of households currently paired to them; a leader their team's; admins all."""
    if person_id is None:
        return False
    if role is Role.ADMIN:
        return True
    if role in (Role.LEADER, Role.TOWNSHIP) and await leads(session, person_id, case.team_id):
        return True
    if case.household_id is None:
        return False
    household = await session.get(Household, case.household_id)
    if household is None:
        return False
    person = await session.get(Person, person_id)
    return await can_see_household(session, person, household)


async def recent_open_case(
    session: AsyncSession, account_id: int, since: datetime, household_id: int | None = None
) -> Case | None:
    """The villager's case (not a call-back) opened since `since` and still waiting for its first reply:
    further messages in one sitting add to it instead of opening more cases. Only a case of the household the
    account is bound to now: an account unbound (or rebound) since never adds to another household's case."""
    q = (
        select(Case)
        .where(
            Case.account_id == account_id,
            Case.household_id.is_not_distinct_from(household_id),
            Case.created_at >= since,
            Case.status == CaseStatus.OPEN.value,
            Case.kind != CaseKind.CALLBACK.value,
        )
        .order_by(Case.id.desc())
        .limit(1)
    )
    return (await session.execute(q)).scalar_one_or_none()


def add_to(case: Case, text: str, hardship: bool, topic: str, now: datetime) -> bool:
    """Append a further message to an open case; True when it turned the case into a hardship."""
    case.text = (case.text + "\n" + storable_text(text)).strip()
    if case.topic == "none" and topic:
        case.topic = topic
    case.updated_at = now
    if hardship and not case.hardship:
        case.hardship = True
        return True
    return False


def record_reply(case: Case, text: str, now: datetime) -> None:
    """The cadre (or leader) answered the villager; the case stays open until resolved."""
    case.reply_text = text
    case.first_reply_at = case.first_reply_at or now
    if case.status == CaseStatus.OPEN.value:
        case.status = CaseStatus.REPLIED.value
    case.updated_at = now


def resolve(case: Case, note: str, now: datetime) -> bool:
    """Close the case; False when it was closed already (a second press changes nothing)."""
    if case.status == CaseStatus.RESOLVED.value:
        return False
    case.status = CaseStatus.RESOLVED.value
    case.resolution_note = note
    case.resolved_at = now
    case.first_reply_at = case.first_reply_at or now
    case.updated_at = now
    return True


def hand_to_leader(case: Case, now: datetime) -> bool:
    """Give the case to the team leader; False when it is there already or closed."""
    if case.status in (CaseStatus.LEADER.value, CaseStatus.RESOLVED.value):
        return False
    case.status = CaseStatus.LEADER.value
    case.updated_at = now
    return True


async def led_team_ids(session: AsyncSession, person_id: int) -> list[int]:
    q = select(Team.id).where(or_(Team.leader_id == person_id, Team.township_contact_id == person_id))
    return list((await session.execute(q)).scalars())


def _villager() -> Any:
    """The villager's name: the household head, else the chat account's display name."""
    return func.coalesce(Household.head_name, Account.display_name, "")


async def open_cases_for(
    session: AsyncSession, person_id: int, role: Role, limit: int = 50
) -> list[tuple[Case, str]]:
    """Unresolved cases the person handles, hardships first, then oldest: a cadre's paired households; a
    leader's teams. Each with the villager's name (one query for the list)."""
    q = (
        select(Case, _villager())
        .outerjoin(Household, Household.id == Case.household_id)
        .outerjoin(Account, Account.id == Case.account_id)
        .where(Case.status != CaseStatus.RESOLVED.value)
    )
    if role is not Role.ADMIN:
        paired = select(Pairing.household_id).where(Pairing.cadre_id == person_id, Pairing.end_date.is_(None))
        scope: ColumnElement[bool] = Case.household_id.in_(paired)
        if role in (Role.LEADER, Role.TOWNSHIP):
            teams = await led_team_ids(session, person_id)
            if teams:
                scope = or_(scope, Case.team_id.in_(teams))
        q = q.where(scope)
    q = q.order_by(Case.hardship.desc(), Case.created_at, Case.id).limit(limit)
    return [(c, str(name)) for c, name in (await session.execute(q)).all()]


async def waiting_questions(
    session: AsyncSession, person_id: int, limit: int = 30
) -> list[tuple[PolicyQuestion, str]]:
    """Questions forwarded to the person that have no reply yet, oldest first, with the villager's name."""
    q = (
        select(PolicyQuestion, _villager())
        .outerjoin(Account, Account.id == PolicyQuestion.account_id)
        .outerjoin(Household, Household.id == Account.household_id)
        .where(PolicyQuestion.forwarded_to_id == person_id, PolicyQuestion.replied_at.is_(None))
        .order_by(PolicyQuestion.created_at, PolicyQuestion.id)
        .limit(limit)
    )
    return [(pq, str(name)) for pq, name in (await session.execute(q)).all()]


def month_bounds(today: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local calendar month containing today, as aware datetimes [first, next first)."""
    first = today.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(first, time(0), tzinfo=tz), datetime.combine(nxt, time(0), tzinfo=tz)


async def top_topics(
    session: AsyncSession, team_ids: list[int] | None, since: datetime, until: datetime, limit: int = 5
) -> list[tuple[str, int, int]]:
    """(topic, questions, answered) villagers of the teams' villages asked most in [since, until);
    team_ids None: everywhere. Messages with no topic (chit-chat among them) are not ranked."""
    answered = func.sum(func.cast(PolicyQuestion.answered, type_=Integer))
    q = (
        select(PolicyQuestion.topic, func.count(PolicyQuestion.id), answered)
        .join(Account, Account.id == PolicyQuestion.account_id)
        .where(
            PolicyQuestion.created_at >= since,
            PolicyQuestion.created_at < until,
            PolicyQuestion.topic != "none",
            Account.person_id.is_(None),
        )
        .group_by(PolicyQuestion.topic)
        .order_by(func.count(PolicyQuestion.id).desc(), PolicyQuestion.topic)
        .limit(limit)
    )
    if team_ids is not None:
        villages = select(Team.village_id).where(Team.id.in_(team_ids))
        q = q.join(Household, Household.id == Account.household_id).where(Household.village_id.in_(villages))
    return [(str(t), int(n), int(a or 0)) for t, n, a in (await session.execute(q)).all()]
