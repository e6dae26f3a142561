"""Limits kept in the database, so they hold across worker processes and restarts (issue 10 #3).

- Invite-code guesses: after `INVITE_TRIES` wrong codes an account is locked out, each lock-out longer
  than the one before (1, 4, 16 … minutes, at most a day). While locked, no code is even looked at.
- A message budget per chat account and minute: the engine counts every update with one UPSERT
  (`message_counter`); the first update over the budget is answered once ("您发得太快了"), the rest of the
  minute is dropped quietly.
- A message budget per group chat and minute (`group_key`), on top of each member's own: counted only for
  updates from non-private chats (the private hot path runs no extra statement), answered once in the
  group, then quiet for the rest of the minute.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, literal_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import RateLimit

INVITE_TRIES = 5
FIRST_LOCK = timedelta(minutes=1)
LOCK_GROWTH = 4
MAX_LOCK = timedelta(days=1)


def message_key(channel: str, user_id: str) -> str:
    return f"msg:{channel}:{user_id}"


def group_key(channel: str, chat_id: str) -> str:
    return f"grp:{channel}:{chat_id}"


def invite_key(channel: str, user_id: str) -> str:
    return f"invite:{channel}:{user_id}"


def minute_window(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def message_counter(postgres: bool) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … RETURNING count: the account's updates in this minute, this one
    included (parameters: key, window_start). Built once by the engine."""
    table = RateLimit.__table__
    insert = pg_insert if postgres else sqlite_insert
    one: ColumnElement[int] = literal_column("1")
    stmt = insert(table).values(  # type: ignore[arg-type]
        key=bindparam("key"), window_start=bindparam("window_start"), count=one, strikes=literal_column("0")
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "count": case((table.c.window_start == stmt.excluded.window_start, table.c.count + one), else_=one),
            "window_start": stmt.excluded.window_start,
        },
    ).returning(table.c.count)


async def invite_lock_left(session: AsyncSession, key: str, now: datetime) -> int | None:
    """Whole minutes left of a lock-out on invite codes, or None when codes may be tried."""
    row = await session.get(RateLimit, key)
    if row is None or row.locked_until is None:
        return None
    until = row.locked_until if row.locked_until.tzinfo else row.locked_until.replace(tzinfo=now.tzinfo)
    if until <= now:
        return None
    return max(1, math.ceil((until - now).total_seconds() / 60))


async def invite_failed(session: AsyncSession, key: str, now: datetime) -> int | None:
    """Count a wrong code; the minutes of the lock-out it started, if it started one."""
    # One account's updates take turns across workers (the engine holds the user's advisory lock on PostgreSQL).
    row = await session.get(RateLimit, key, with_for_update=True)
    if row is None:
        row = RateLimit(key=key, window_start=now, count=0, strikes=0, locked_until=None)
        session.add(row)
    row.window_start = now  # for invite rows: the last wrong code (retention keeps the history a week past it)
    row.count = (row.count or 0) + 1
    if row.count < INVITE_TRIES:
        return None
    lock = min(FIRST_LOCK * LOCK_GROWTH ** (row.strikes or 0), MAX_LOCK)
    row.strikes = (row.strikes or 0) + 1
    row.count = 0
    row.locked_until = now + lock
    return max(1, math.ceil(lock.total_seconds() / 60))


def verdict(count: int, budget: int) -> str | None:
    """None within the budget; "too_fast" for the first update over it (answered once); "quiet" after."""
    if count <= budget:
        return None
    return "too_fast" if count == budget + 1 else "quiet"


class RedisBudget:
    """The message budget counted in Redis (BANGFU_REDIS_URL) instead of the database: one INCR per update
    on a key per account and minute that expires by itself, shared by every worker process."""

    def __init__(self, redis: Any, prefix: str = "bangfu:budget") -> None:
        self._redis = redis
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str) -> RedisBudget:
        import redis.asyncio as aioredis

        return cls(aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5))

    async def count(self, key: str, window: datetime) -> int | None:
        """This update's number in the account's minute; None when Redis cannot be asked (the database
        counts it then)."""
        name = f"{self._prefix}:{key}:{int(window.timestamp())}"
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.incr(name)
            pipe.expire(name, 120)
            n, _ = await pipe.execute()
            return int(n)
        except Exception:  # Redis down: fall back to the database, never to no limit
            return None

    async def aclose(self) -> None:
        await self._redis.aclose()
