"""Binding chat accounts to people and households: invite codes and shared phone contacts."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import Account, Household, Invite, Person

# Unambiguous alphabet: no 0/O, 1/I/L, for codes read aloud or typed on a phone.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_RE = re.compile(r"^[A-Za-z0-9]{6,32}$")


def normalize_phone(raw: str) -> str:
    """Digits of a phone number without +86 / 0086 prefixes."""
    digits = re.sub(r"\D", "", raw)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            digits = digits[len(prefix) :]
    return digits


@dataclass
class Binding:
    person: Person | None
    household: Household | None
    released: list[Account] = field(default_factory=list)  # accounts this binding took over


async def create_invite(
    session: AsyncSession,
    now: datetime,
    person: Person | None = None,
    household: Household | None = None,
    valid_days: int = 30,
) -> Invite:
    """A new one-time invite code for a person or a household."""
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    invite = Invite(
        code=code,
        person_id=person.id if person else None,
        household_id=household.id if household else None,
        created_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    session.add(invite)
    await session.flush()
    return invite


async def find_person(session: AsyncSession, name_or_phone: str) -> list[Person]:
    """People on the roster matching a phone number or an exact name."""
    phone = normalize_phone(name_or_phone)
    cond = Person.name == name_or_phone.strip()
    if len(phone) >= 7:
        cond = or_(cond, Person.phone == phone)
    return list((await session.execute(select(Person).where(cond))).scalars())


async def redeem_invite(session: AsyncSession, account: Account, code: str, now: datetime) -> Binding | None:
    """Bind the account with a one-time code; None if the code is unknown, used or expired."""
    if not CODE_RE.match(code):
        return None
    invite = (
        await session.execute(select(Invite).where(Invite.code == code.upper()).with_for_update())
    ).scalar_one_or_none()
    if invite is None or invite.used_at is not None:
        return None
    if invite.expires_at is not None and invite.expires_at < now:
        return None
    invite.used_at = now
    invite.used_by_account_id = account.id
    person = await session.get(Person, invite.person_id) if invite.person_id else None
    household = await session.get(Household, invite.household_id) if invite.household_id else None
    released = await bind(session, account, person, household, now)
    return Binding(person, household, released)


async def match_phone(session: AsyncSession, phone_raw: str) -> Binding | None:
    """Who a phone number belongs to: an active roster person first, else a household; None if nobody."""
    phone = normalize_phone(phone_raw)
    if len(phone) < 7:
        return None
    person = (
        await session.execute(select(Person).where(Person.phone == phone, Person.active.is_(True)))
    ).scalar_one_or_none()
    if person is not None:
        return Binding(person, None)
    household = (
        await session.execute(select(Household).where(Household.phone == phone).limit(1))
    ).scalar_one_or_none()
    if household is not None:
        return Binding(None, household)
    return None


async def current_owners(
    session: AsyncSession, account: Account, person: Person | None, household: Household | None
) -> list[Account]:
    """Other accounts on the same channel already bound to this person (or household)."""
    if person is not None:
        cond = Account.person_id == person.id
    elif household is not None:
        cond = Account.household_id == household.id
    else:
        return []
    q = select(Account).where(cond, Account.channel == account.channel, Account.id != account.id)
    return list((await session.execute(q.order_by(Account.id))).scalars())


async def bind(
    session: AsyncSession,
    account: Account,
    person: Person | None,
    household: Household | None,
    now: datetime,
    release_household: bool = False,
) -> list[Account]:
    """Bind the account; the accounts whose binding it took over are returned (to be told). A household
    may have several family members' accounts; they are released only when `release_household`."""
    released = (
        await current_owners(session, account, person, household) if person is not None or release_household else []
    )
    # One person (or household), one account per channel: an older binding is released.
    for other in released:
        if person is not None:
            other.person_id = None
        else:
            other.household_id = None
        other.commands_scope = None
    if person is not None:
        account.person_id = person.id
        if person.language and not account.language:
            account.language = person.language
    if household is not None:
        account.household_id = household.id
    account.bound_at = now
    account.commands_scope = None  # the menu changes with the role
    return released
