"""Sign-in to the web dashboard without passwords: `/web` in the chat makes a one-time link.

A link token is `<random>.<signature>`: signed with the dashboard's key (HMAC-SHA256), stored only as the
hash of its random part, valid `LINK_MINUTES`, and used at most once (the use is recorded: `used_at`).
The key lives in the database (`web_keys`), made on first use, so the chat process that makes a link
and the web process that opens it share it without any setting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import Person, WebKey, WebLink, WebPerson

LINK_MINUTES = 10


async def signing_key(session: AsyncSession) -> bytes:
    """The dashboard's signing key (made once, by whichever process needs it first)."""
    found = (await session.execute(select(WebKey.secret).where(WebKey.id == 1))).scalar_one_or_none()
    if found is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(WebKey).values(id=1, secret=secrets.token_hex(32)).on_conflict_do_nothing()
        await session.execute(stmt)
        found = (await session.execute(select(WebKey.secret).where(WebKey.id == 1))).scalar_one()
    return found.encode()


def sign(key: bytes, purpose: str, value: str) -> str:
    """A short URL-safe HMAC of value for one purpose ("link", "session", "csrf")."""
    mac = hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def create_link(session: AsyncSession, person: Person, now: datetime) -> str:
    """A new one-time sign-in token for person (valid LINK_MINUTES from now)."""
    raw = secrets.token_urlsafe(24)
    session.add(
        WebLink(
            token_hash=_hash(raw),
            person_id=person.id,
            created_at=now,
            expires_at=now + timedelta(minutes=LINK_MINUTES),
        )
    )
    return f"{raw}.{sign(await signing_key(session), 'link', raw)}"


async def use_link(session: AsyncSession, token: str, now: datetime) -> Person | None:
    """The active person a token signs in, marking it used; None for a forged, used or expired one.
    One UPDATE … WHERE used_at IS NULL claims it, so two tabs opening one link sign in at most once."""
    raw, _, mac = token.partition(".")
    if not raw or not mac or len(token) > 200:
        return None
    if not hmac.compare_digest(mac, sign(await signing_key(session), "link", raw)):
        return None
    claimed = await session.execute(
        update(WebLink)
        .where(WebLink.token_hash == _hash(raw), WebLink.used_at.is_(None), WebLink.expires_at > now)
        .values(used_at=now)
        .returning(WebLink.person_id)
    )
    person_id = claimed.scalar_one_or_none()
    if person_id is None:
        return None
    person = await session.get(Person, person_id)
    return person if person is not None and person.active else None


async def generation(session: AsyncSession, person_id: int) -> int:
    """The person's current session generation (sessions made under an older one are void)."""
    found = await session.execute(select(WebPerson.generation).where(WebPerson.person_id == person_id))
    return found.scalar_one_or_none() or 0


async def person_and_generation(session: AsyncSession, person_id: int) -> tuple[Person | None, int]:
    """The person and their session generation in one statement (every web request checks both)."""
    found = (await session.execute(
        select(Person, WebPerson.generation).outerjoin(WebPerson, WebPerson.person_id == Person.id)
        .where(Person.id == person_id)
    )).first()
    if found is None:
        return None, 0
    return found[0], found[1] or 0


async def sign_out_everywhere(session: AsyncSession, person_id: int) -> int:
    """Void every web session of the person; returns the new generation."""
    row = await session.get(WebPerson, person_id, with_for_update=True)
    if row is None:
        row = WebPerson(person_id=person_id, generation=0)
        session.add(row)
    row.generation = (row.generation or 0) + 1
    await session.flush()
    return row.generation
