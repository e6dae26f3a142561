"""Binding chat accounts to people and households: invite codes and shared phone contacts."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
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
    await _bind(session, account, person, household, now)
    return Binding(person, household)


async def bind_by_phone(
    session: AsyncSession, account: Account, phone_raw: str, now: datetime
) -> Binding | None:
    """Bind by the user's own shared phone: a roster person first, else a household's phone."""
    phone = normalize_phone(phone_raw)
    if len(phone) < 7:
        return None
    person = (
        await session.execute(select(Person).where(Person.phone == phone, Person.active.is_(True)))
    ).scalar_one_or_none()
    if person is not None:
        await _bind(session, account, person, None, now)
        return Binding(person, None)
    household = (
        await session.execute(select(Household).where(Household.phone == phone).limit(1))
    ).scalar_one_or_none()
    if household is not None:
        await _bind(session, account, None, household, now)
        return Binding(None, household)
    return None


async def _bind(
    session: AsyncSession, account: Account, person: Person | None, household: Household | None, now: datetime
) -> None:
    if person is not None:
        # One person, one account per channel: an older binding is released.
        others = await session.execute(
            select(Account).where(
                Account.person_id == person.id, Account.channel == account.channel, Account.id != account.id
            )
        )
        for other in others.scalars():
            other.person_id = None
        account.person_id = person.id
        if person.language and not account.language:
            account.language = person.language
    if household is not None:
        account.household_id = household.id
    account.bound_at = now
    account.commands_scope = None  # the menu changes with the role
