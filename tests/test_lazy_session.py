"""PostgreSQL's hot path makes an update's session only when a handler uses it (bot/core/pg_hot.py,
`PgUpdate.open_session`): an update that runs nothing through it checks out one pooled connection and makes no
SQLAlchemy Connection or session; one that does finds the speaker's rows in it, and its writes commit with the
update's finish statement; changes to the speaker's rows made before (a new chat id) are written; a failing
update rolls back and lets the user's lock go either way. After each, the next message is right."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select

from bot.clock import FixedClock
from bot.core.bootstrap import App, build_core
from bot.core.context import Ctx
from bot.core.engine import Core
from bot.core.router import Router
from bot.core.types import Incoming, Reply, User
from bot.handlers.policy import QUESTIONS
from bot.settings import Settings
from bot.store.models import Account, AuditLog, PolicyQuestion
from tests.pg import Trips, advisory_locks

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)

USER = "31"


class Probe:
    """What the handlers below saw, and the signals of the one that waits."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


def _router(probe: Probe) -> Router:
    r = Router("probe")

    @r.command("plain")
    async def plain(ctx: Ctx) -> None:
        ctx.reply_text(f"plain {ctx.account.chat_id}")

    @r.command("keep")
    async def keep(ctx: Ctx) -> None:  # the memo and a row for the finish statement: no session needed
        await ctx.remember("probe", ctx.inc.args)
        await ctx.add_row(QUESTIONS, account_id=ctx.account.id, text=ctx.inc.args, created_at=ctx.now)
        ctx.reply_text(f"kept {ctx.memo.get('probe')}")

    @r.command("touch")
    async def touch(ctx: Ctx) -> None:
        before = ctx.session_made
        session = ctx.session
        state = inspect(ctx.account)
        got = await session.get(Account, ctx.account.id)  # the identity map's: no statement needed
        counted = (await session.execute(select(func.count()).select_from(AuditLog))).scalar_one()
        probe.seen.update(
            before=before, persistent=state.persistent, same=got is ctx.account, in_session=ctx.account in session,
            person_in=ctx.person is None or ctx.person in session, memo=dict(ctx.memo), audits=counted,
        )
        ctx.audit("probe.touch", note=ctx.inc.args)
        ctx.account.language = ctx.inc.args or None  # flushed by the session
        ctx.reply_text("touched")

    @r.command("fail")
    async def fail(ctx: Ctx) -> None:
        if ctx.inc.args == "session":
            ctx.audit("probe.fail")
            await ctx.session.flush()  # written in the update's transaction, then rolled back
            ctx.account.language = "en"
        await ctx.remember("probe", "failed")
        probe.entered.set()
        await probe.release.wait()
        raise RuntimeError("the handler fails")

    return r


def _core(app: App, clock: FixedClock, probe: Probe) -> Core:
    c = app.core
    return Core(c.settings, clock, c.sessions, c.catalogs, [_router(probe)], [], c.services, None)


_n = 0


def _inc(text: str, chat_id: str = USER) -> Incoming:
    global _n
    _n += 1
    cmd, args = Incoming.parse_command(text)
    return Incoming("telegram", User(USER, "x"), chat_id, update_id=f"lz-{_n}", text=text, command=cmd, args=args)


def _text(actions: list[Any]) -> str:
    return " | ".join(a.text for a in actions if isinstance(a, Reply) and a.text)


@contextmanager
def _counting(app: App) -> Iterator[dict[str, int]]:
    """Pool checkouts and SQLAlchemy Connections made on the app's engine (a session's statements need one)."""
    n = {"checkout": 0, "connection": 0}
    engine = app.engine.sync_engine

    def checkout(*_: Any) -> None:
        n["checkout"] += 1

    def connect(*_: Any) -> None:
        n["connection"] += 1

    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine, "engine_connect", connect)
    try:
        yield n
    finally:
        event.remove(engine.pool, "checkout", checkout)
        event.remove(engine, "engine_connect", connect)


async def _pooled_in_own_setting(app: App) -> bool:
    """Every connection idle in the pool, checked out at once, has its adapter's own isolation setting and no
    transaction."""
    pool = app.engine.sync_engine.pool
    idle = pool.checkedin()  # type: ignore[attr-defined]
    assert idle > 0
    fairies = [await app.engine.raw_connection() for _ in range(idle)]
    try:
        adapters = [f.dbapi_connection for f in fairies]
        return all(a.isolation_level == a._isolation_setting and a._transaction is None for a in adapters)
    finally:
        for f in fairies:
            f.close()


async def _account(app: App) -> Account:
    async with app.core.sessions() as s:
        return (await s.execute(select(Account).where(Account.external_id == USER))).scalar_one()


async def _count(app: App, model: Any) -> int:
    async with app.core.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_an_update_that_needs_no_session_makes_none(
    settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build_core(settings, clock)
    core = _core(app, clock, Probe())
    assert core._pg is not None
    try:
        # Warm: the account created, the catalog read, the statements prepared, a block of question ids taken.
        assert _text((await core.handle(_inc("/plain"))).actions) == f"plain {USER}"
        assert _text((await core.handle(_inc("/keep a0"))).actions) == "kept a0"
        for text, want in (("/plain", f"plain {USER}"), ("/keep a1", "kept a1"), ("/keep a2", "kept a2")):
            trips = Trips(monkeypatch)
            with _counting(app) as n:
                assert _text((await core.handle(_inc(text))).actions) == want
            assert n == {"checkout": 1, "connection": 0}, (text, n)  # one pooled connection, nothing more
            assert trips.n == 2, text  # the open function, the finish statement
            monkeypatch.undo()
        assert (await _account(app)).memo == {"probe": "a2"}
        assert await _count(app, PolicyQuestion) == 3
        assert await advisory_locks(settings.database_url) == 0
        assert app.engine.sync_engine.pool.checkedout() == 0
        # The next message, one that needs the session, finds what those wrote.
        assert _text((await core.handle(_inc("/plain"))).actions) == f"plain {USER}"
    finally:
        await app.close()


async def test_a_handler_using_the_session_finds_the_speaker_in_it(settings: Settings, clock: FixedClock) -> None:
    probe = Probe()
    app = build_core(settings, clock)
    core = _core(app, clock, probe)
    try:
        assert _text((await core.handle(_inc("/keep m1"))).actions) == "kept m1"
        with _counting(app) as n:
            assert _text((await core.handle(_inc("/touch en"))).actions) == "touched"
        assert n == {"checkout": 1, "connection": 1}  # the session's Connection over the same pooled connection
        assert probe.seen == {
            "before": None, "persistent": True, "same": True, "in_session": True, "person_in": True,
            "memo": {"probe": "m1"}, "audits": 0,
        }
        # Its writes (an audit row, the account's language) committed with the update.
        assert (await _account(app)).language == "en"
        assert await _count(app, AuditLog) == 1
        # A memo kept before the session was made, then the session: both written, one transaction.
        assert _text((await core.handle(_inc("/keep m2"))).actions) == "kept m2"
        assert _text((await core.handle(_inc("/touch zh_CN"))).actions) == "touched"
        acc = await _account(app)
        assert acc.language == "zh_CN" and acc.memo == {"probe": "m2"}
        assert probe.seen["memo"] == {"probe": "m2"} and probe.seen["audits"] == 1
        assert await _count(app, AuditLog) == 2
        assert await advisory_locks(settings.database_url) == 0
        assert app.engine.sync_engine.pool.checkedout() == 0
        assert _text((await core.handle(_inc("/plain"))).actions) == f"plain {USER}"  # the next message
    finally:
        await app.close()


async def test_a_new_chat_id_is_written_without_a_session(
    settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open statement loads the account; the core sets its new chat id before any session exists: the
    finish statement writes it (`ACCOUNT_COLUMNS`), no session made, two round trips."""
    app = build_core(settings, clock)
    core = _core(app, clock, Probe())
    try:
        assert _text((await core.handle(_inc("/plain"))).actions) == f"plain {USER}"
        assert _text((await core.handle(_inc("/plain", chat_id="9030"))).actions) == "plain 9030"  # prepared
        trips = Trips(monkeypatch)
        with _counting(app) as n:
            assert _text((await core.handle(_inc("/plain", chat_id="9031"))).actions) == "plain 9031"
        assert n == {"checkout": 1, "connection": 0}
        assert trips.n == 2  # the open function, the finish statement
        monkeypatch.undo()
        assert (await _account(app)).chat_id == "9031"
        # The next message, from the same chat: nothing to change, no session made.
        with _counting(app) as n:
            assert _text((await core.handle(_inc("/plain", chat_id="9031"))).actions) == "plain 9031"
        assert n == {"checkout": 1, "connection": 0}
        # A new chat id and the memo, then a handler that uses the session: all written.
        assert _text((await core.handle(_inc("/keep c1", chat_id="9032"))).actions) == "kept c1"
        acc = await _account(app)
        assert acc.chat_id == "9032" and acc.memo == {"probe": "c1"}
        assert _text((await core.handle(_inc("/touch en", chat_id="9033"))).actions) == "touched"
        acc = await _account(app)
        assert acc.chat_id == "9033" and acc.language == "en"
        assert await advisory_locks(settings.database_url) == 0
    finally:
        await app.close()


@pytest.mark.parametrize("how", ["fails", "cancelled"])
@pytest.mark.parametrize("session", ["session", "none"])
async def test_a_failing_update_rolls_back_and_lets_the_lock_go(
    settings: Settings, clock: FixedClock, how: str, session: str
) -> None:
    """A handler fails (or its task is cancelled) holding the user's lock, with the session made and a row
    flushed, or with none: nothing of it is kept (the row, the memo, the account's change), the same user's
    next update on another worker goes on at once, no lock or connection is left behind; the next message
    works."""
    probe = Probe()
    app_a, app_b = build_core(settings, clock), build_core(settings, clock)
    a, b = _core(app_a, clock, probe), _core(app_b, clock, probe)
    try:
        assert _text((await a.handle(_inc("/keep before"))).actions) == "kept before"
        first = asyncio.create_task(a.handle(_inc(f"/fail {session}")))
        await asyncio.wait_for(probe.entered.wait(), 10)
        second = asyncio.create_task(b.handle(_inc("/plain")))
        await asyncio.sleep(0.3)
        assert not second.done()  # it waits for the user's lock
        if how == "fails":
            probe.release.set()
            assert _text((await asyncio.wait_for(first, 10)).actions) == a.catalogs.get("zh_CN")("core.error")
        else:
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
        assert _text((await asyncio.wait_for(second, 5)).actions) == f"plain {USER}"
        acc = await _account(app_a)
        assert acc.memo == {"probe": "before"} and acc.language is None
        assert await _count(app_a, AuditLog) == 0
        assert await advisory_locks(settings.database_url) == 0
        for w in (app_a, app_b):
            assert w.engine.sync_engine.pool.checkedout() == 0
            assert await _pooled_in_own_setting(w)  # reads-first mode (`PgUpdate.reads_first`) never left behind
        # The next messages, on the worker whose update failed: one without the session, one with it.
        assert _text((await a.handle(_inc("/keep after"))).actions) == "kept after"
        assert _text((await a.handle(_inc("/touch en"))).actions) == "touched"
        acc = await _account(app_a)
        assert acc.memo == {"probe": "after"} and acc.language == "en"
        assert await _count(app_a, AuditLog) == 1
    finally:
        probe.release.set()
        await app_a.close()
        await app_b.close()
