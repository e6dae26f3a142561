"""Issue 10 #3: a message budget per group chat, on top of each member's own. A group whose many members
each stay within their own budget can still flood the bot: the group's next update is answered once in the
group, the rest of the minute is quiet. Private chats are not counted for it (no extra statement)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, select

from bot.core import limits
from bot.core.bootstrap import App, build_core
from bot.core.pg_hot import PgHotPath
from bot.core.types import Incoming, Reply, User
from bot.settings import Settings
from bot.store.models import RateLimit
from tests.conftest import World

GROUP_BUDGET = 8
GROUP = "-100777"


def _settings(app: App, **extra: Any) -> Settings:
    return app.core.settings.model_copy(update={"messages_per_minute_per_group": GROUP_BUDGET, **extra})


class Member:
    """One user speaking in a chat (the group, or privately)."""

    seq = 0

    def __init__(self, core: App, user_id: str, chat_id: str = GROUP, chat_type: str = "supergroup") -> None:
        self.core, self.user_id, self.chat_id, self.chat_type = core, user_id, chat_id, chat_type

    async def send(self, text: str = "/help") -> list[Reply]:
        Member.seq += 1
        cmd, args = Incoming.parse_command(text)
        inc = Incoming(
            channel="telegram", user=User(self.user_id, "群友", language_code="zh-hans"), chat_id=self.chat_id,
            chat_type=self.chat_type, update_id=f"g{Member.seq}-{uuid.uuid4().hex[:6]}", text=text, command=cmd,
            args=args,
        )
        return [a for a in (await self.core.core.handle(inc)).actions if isinstance(a, Reply)]


async def _flood(members: list[Member], n: int) -> list[list[Reply]]:
    return [await members[i % len(members)].send() for i in range(n)]


async def test_group_budget_answers_once_then_quiet(app: App, world: World) -> None:
    core = build_core(_settings(app), app.core.clock)
    try:
        zh = core.core.catalogs.get("zh_CN")
        members = [Member(core, f"80{i}") for i in range(4)]  # 4 members: each well within their own 30
        answered = await _flood(members, GROUP_BUDGET + 10)
        assert all(answered[:GROUP_BUDGET])
        assert [r.text for r in answered[GROUP_BUDGET]] == [zh("security.group_too_fast")]
        assert answered[GROUP_BUDGET][0].chat_id == GROUP
        assert not any(answered[GROUP_BUDGET + 1 :])
        # The same people in private chats are not held back by their group.
        assert await Member(core, "800", "800", "private").send()
        # Another group is not affected; the next minute this one is answered again.
        assert await Member(core, "800", "-100778").send()
        core.core.clock.advance(minutes=1)  # type: ignore[attr-defined]
        again = "".join(r.text or "" for r in await members[1].send())
        assert "/help" in again and zh("security.group_too_fast") not in again
        async with core.core.sessions() as s:
            row = await s.get(RateLimit, f"grp:telegram:{GROUP}")
            assert row is not None and row.count == 1
            assert await s.get(RateLimit, "grp:telegram:800") is None  # private chats never counted
    finally:
        await core.close()


async def _statements_of_second_update(app: App, budget: int, user: str, chat: str, chat_type: str) -> list[str]:
    """The statements the database ran for a member's second update (the first creates the account): SQLite's
    own trace on the connection the core keeps (the hot path runs some straight on the DBAPI cursor), else
    SQLAlchemy's cursor events plus the PostgreSQL hot path's own statements."""
    core = build_core(_settings(app, messages_per_minute_per_group=budget), app.core.clock)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def traced(sql: str) -> None:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            statements.append(sql)

    sync_engine = core.core.sessions.kw["bind"].sync_engine
    me = Member(core, user, chat, chat_type)
    try:
        await me.send()
        kept = core.core.update_connection
        if kept is not None:  # loop SQLite
            raw = (await kept.get_raw_connection()).driver_connection
            raw.set_trace_callback(traced)
        else:
            event.listen(sync_engine, "before_cursor_execute", seen)
            PgHotPath.trace = statements.append
        try:
            await me.send()
        finally:
            if kept is not None:
                raw.set_trace_callback(None)
            else:
                event.remove(sync_engine, "before_cursor_execute", seen)
                PgHotPath.trace = None
    finally:
        await core.close()
    return statements


async def test_private_update_runs_no_group_statement(app: App, world: World) -> None:
    """The private hot path: the same statements with the group budget on as with it off; a group's update
    runs one more (the group's count) with it on."""
    off = await _statements_of_second_update(app, 0, "810", "810", "private")
    on = await _statements_of_second_update(app, GROUP_BUDGET, "811", "811", "private")
    assert len(on) == len(off) >= 2  # at least the dedup / budget / speaker statement(s) and the handler's
    off = await _statements_of_second_update(app, 0, "812", "-100812", "group")
    on = await _statements_of_second_update(app, GROUP_BUDGET, "813", "-100813", "group")
    if app.core._pg is not None:  # PostgreSQL: the group is counted by the open function, in its round trip
        assert len(on) == len(off)
        async with app.core.sessions() as s:
            counted = await s.scalar(
                select(RateLimit.count).where(RateLimit.key == limits.group_key("telegram", "-100813"))
            )
            not_counted = await s.scalar(
                select(RateLimit.count).where(RateLimit.key == limits.group_key("telegram", "-100812"))
            )
        assert (counted, not_counted) == (2, None)
        return
    assert len(on) == len(off) + 1
    assert sum("rate_limits" in s for s in on) == sum("rate_limits" in s for s in off) + 1


async def test_group_budget_shared_by_two_cores(app: App, world: World) -> None:
    """Two worker processes (or one restarted) on one database share the group's budget."""
    a, b = build_core(_settings(app), app.core.clock), build_core(_settings(app), app.core.clock)
    try:
        members = [Member(a, "820"), Member(b, "821"), Member(a, "822"), Member(b, "823")]
        answered = await _flood(members, GROUP_BUDGET + 5)
        assert all(answered[:GROUP_BUDGET])
        assert len(answered[GROUP_BUDGET]) == 1 and not any(answered[GROUP_BUDGET + 1 :])
    finally:
        await a.close()
        await b.close()


async def test_group_budget_in_redis(app: App, world: World) -> None:
    import redis.asyncio as aioredis

    url = "redis://127.0.0.1:6379/0"
    probe = aioredis.from_url(url)
    try:
        await probe.ping()
    except Exception:
        pytest.skip("Redis is not reachable")
    finally:
        await probe.aclose()
    settings = _settings(app, redis_url=url)
    a, b = build_core(settings, app.core.clock), build_core(settings, app.core.clock)
    group = f"-100{uuid.uuid4().int % 10**9}"  # a fresh Redis key for this run
    try:
        # Fresh users too: the fixed clock's minute is the same in every run, and Redis keeps its counts 2 min.
        members = [Member(a, f"830{group}", group), Member(b, f"831{group}", group)]
        answered = await _flood(members, GROUP_BUDGET + 5)
        assert all(answered[:GROUP_BUDGET])
        zh = a.core.catalogs.get("zh_CN")
        assert [r.text for r in answered[GROUP_BUDGET]] == [zh("security.group_too_fast")]
        assert not any(answered[GROUP_BUDGET + 1 :])
        async with a.core.sessions() as s:  # counted in Redis: the database is not written for it
            assert (await s.execute(select(RateLimit).where(RateLimit.key == f"grp:telegram:{group}"))).first() is None
    finally:
        await a.close()
        await b.close()
