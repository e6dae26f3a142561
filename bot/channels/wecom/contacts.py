"""Binding WeCom members to roster people by phone number (`bangfu wecom import-contacts`).

Only exact matches bind: the member's mobile (from user/list, or user/get when the list leaves it out),
reduced to its digits without a leading +86 / 86, equal to a staff person's roster phone (cadre, leader,
township, admin; never a villager: villagers bind with their household's invite code). A member already
bound to someone else, or a person already bound to another WeCom userid, is left alone and reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.wecom import CHANNEL
from bot.channels.wecom.api import WeComAPI
from bot.store.enums import Role
from bot.store.models import Account, Person

STAFF = (Role.CADRE.value, Role.LEADER.value, Role.TOWNSHIP.value, Role.ADMIN.value)


def phone_key(phone: str | None) -> str:
    """A phone number's digits, without a leading 86 country code."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


@dataclass
class ImportResult:
    bound: list[tuple[str, str]] = field(default_factory=list)  # (userid, person name)
    already: int = 0
    no_phone: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


async def members_with_mobile(api: WeComAPI, department_id: int = 1) -> list[dict[str, Any]]:
    members = await api.members(department_id)
    for m in members:
        if not m.get("mobile"):
            m["mobile"] = (await api.member(str(m["userid"]))).get("mobile", "")
    return members


async def bind_members(s: AsyncSession, members: list[dict[str, Any]], now: datetime,
                       prefer: bool = False) -> ImportResult:
    """Bind members to staff by exact phone (one transaction: the caller's)."""
    result = ImportResult()
    staff = (await s.execute(select(Person).where(Person.role.in_(STAFF), Person.active.is_(True)))).scalars().all()
    by_phone = {phone_key(p.phone): p for p in staff if phone_key(p.phone)}
    accounts = (await s.execute(select(Account).where(Account.channel == CHANNEL))).scalars().all()
    by_user = {a.external_id: a for a in accounts}
    wecom_of = {a.person_id: a.external_id for a in accounts if a.person_id is not None}
    for m in members:
        userid, name = str(m["userid"]), str(m.get("name", ""))
        key = phone_key(m.get("mobile"))
        if not key:
            result.no_phone.append(userid)
            continue
        person = by_phone.get(key)
        if person is None:
            result.unmatched.append(userid)
            continue
        account = by_user.get(userid)
        if account is not None and account.person_id == person.id:
            result.already += 1
            continue
        if (account is not None and account.person_id not in (None, person.id)) or \
                wecom_of.get(person.id, userid) != userid:
            result.conflicts.append(userid)
            continue
        if account is None:
            account = Account(channel=CHANNEL, external_id=userid, chat_id=userid, display_name=name[:128],
                              created_at=now)
            s.add(account)
            by_user[userid] = account
        account.person_id, account.bound_at = person.id, now
        wecom_of[person.id] = userid
        if prefer:
            person.preferred_channel = CHANNEL
        result.bound.append((userid, person.name))
    await s.flush()
    return result
