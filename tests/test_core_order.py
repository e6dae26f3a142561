"""One user's updates handled by two workers (two cores on two engines over one database) take turns, and
the second reads what the first committed: its dialog step, not the one the first update started from.

On PostgreSQL (READ COMMITTED) a statement reads the snapshot taken when it started: a statement that
both waits for the user's lock and reads the dialog row would read the row as it was before the first
update committed, and the second update would answer the wrong step."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from bot.clock import FixedClock
from bot.core.bootstrap import App, build_core
from bot.core.context import Ctx
from bot.core.dialog import Dialog, Goto, Next, Retry, State
from bot.core.engine import Core
from bot.core.pg_hot import HELD, USER_LOCK_NS, PgUpdate, user_lock_key
from bot.core.router import EVERYONE, Router
from bot.core.types import Incoming, Reply, User
from bot.settings import Settings
from bot.store.enums import Role
from bot.store.models import Account, Outbox, PolicyQuestion
from tests.conftest import World
from tests.pg import Trips, advisory_locks


class Held(Dialog):
    """Two steps; the input "hold" waits for the test's signal inside the update's transaction."""

    name = "held"
    roles: ClassVar[frozenset[Role]] = EVERYONE
    first_step = "name"
    title_key = "core.btn_resume"
    entered: asyncio.Event
    release: asyncio.Event

    async def ask(self, ctx: Ctx, st: State) -> None:
        ctx.reply_text(f"ask {st.step}" if st.step != "done" else f"got {st.data['name']} {st.data['age']}")

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        text = (ctx.inc.text or "").strip()
        if text == "hold":
            self.entered.set()
            await self.release.wait()
        if st.step == "name":
            st.set(name=text)
            return Goto("age")
        if st.step == "age":
            st.set(age=text)
            return Goto("done")
        return Retry("core.not_understood")


def _router() -> Router:
    r = Router("held")

    @r.command("held")
    async def start(ctx: Ctx) -> None:
        await ctx.core.start_dialog(ctx, "held")

    return r


def _core(app: App, clock: FixedClock, dialog: Held) -> Core:
    return Core(app.core.settings, clock, app.core.sessions, app.core.catalogs, [_router()], [dialog],
                app.core.services, None)


def _two_workers(settings: Settings, clock: FixedClock, dialog: Held, hot_path: bool) -> tuple[App, App, Core, Core]:
    """Two engines with two pools (two worker processes' worth) running `dialog`; `hot_path` False: PostgreSQL
    through SQLAlchemy only (skipped where there is no asyncpg hot path to turn off)."""
    worker_a, worker_b = build_core(settings, clock), build_core(settings, clock)
    dialog.entered, dialog.release = asyncio.Event(), asyncio.Event()
    a, b = _core(worker_a, clock, dialog), _core(worker_b, clock, dialog)
    if not hot_path:
        if a._pg is None:
            pytest.skip("no PostgreSQL hot path on this database")
        a._pg = b._pg = None
    return worker_a, worker_b, a, b


def _inc(n: int, text: str) -> Incoming:
    cmd, args = Incoming.parse_command(text)
    return Incoming("telegram", User("42", "x"), "42", update_id=f"o-{n}", text=text, command=cmd, args=args)


def _text(actions: list[Any]) -> str:
    return " | ".join(a.text for a in actions if isinstance(a, Reply) and a.text)


@pytest.mark.parametrize("budget", [30, 0])  # 0: no message budget counted in the database (or in Redis)
@pytest.mark.parametrize("hot_path", [True, False])  # False: PostgreSQL through SQLAlchemy only (not asyncpg)
async def test_second_worker_reads_what_the_first_committed(
    settings: Settings, clock: FixedClock, budget: int, hot_path: bool
) -> None:
    settings = settings.model_copy(update={"messages_per_minute": budget})
    dialog = Held()
    worker_a, worker_b, a, b = _two_workers(settings, clock, dialog, hot_path)
    try:
        assert _text((await a.handle(_inc(1, "/held"))).actions) == "ask name"
        first = asyncio.create_task(a.handle(_inc(2, "hold")))  # name = hold, held open
        await asyncio.wait_for(dialog.entered.wait(), 10)
        second = asyncio.create_task(b.handle(_inc(3, "42")))  # the same user, on the other worker
        await asyncio.sleep(0.3)
        assert not second.done()  # it waits for the first update of its user to end
        dialog.release.set()
        assert _text((await asyncio.wait_for(first, 10)).actions) == "ask age"
        # The second update sees the step the first one committed (age), not the one it replaced (name).
        assert _text((await asyncio.wait_for(second, 10)).actions) == "got hold 42"
        # And the next message, on the first worker again, finds the dialog where the second one left it.
        assert _text((await a.handle(_inc(4, "more"))).actions).endswith("got hold 42")
    finally:
        dialog.release.set()
        await worker_a.close()
        await worker_b.close()


class Boom(Held):
    """As Held, and the input "boom" fails the update after its signal (inside the update)."""

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        if (ctx.inc.text or "").strip() == "boom":
            self.entered.set()
            await self.release.wait()
            st.set(name="boom")  # never kept: the update fails
            raise RuntimeError("the handler fails holding the user's lock")
        return await super().on_input(ctx, st)


@pytest.mark.parametrize("how", ["fails", "cancelled"])
@pytest.mark.parametrize("hot_path", [True, False])
async def test_a_failed_or_cancelled_update_lets_the_next_one_through(
    settings: Settings, clock: FixedClock, how: str, hot_path: bool
) -> None:
    """The first update fails in its handler (or its task is cancelled) while it holds the user's lock: the
    second, waiting on the other worker, goes on at once and reads the dialog as it was before the first
    (nothing of the failed update kept); the next message after it is right; no lock is left behind."""
    dialog = Boom()
    worker_a, worker_b, a, b = _two_workers(settings, clock, dialog, hot_path)
    try:
        assert _text((await a.handle(_inc(1, "/held"))).actions) == "ask name"
        text = "boom" if how == "fails" else "hold"
        first = asyncio.create_task(a.handle(_inc(2, text)))
        await asyncio.wait_for(dialog.entered.wait(), 10)
        second = asyncio.create_task(b.handle(_inc(3, "ann")))
        await asyncio.sleep(0.3)
        assert not second.done()  # it waits for the first update of its user
        if how == "fails":
            dialog.release.set()
            assert _text((await asyncio.wait_for(first, 10)).actions) == a.catalogs.get("zh_CN")("core.error")
        else:
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
        # The second reads the step before the failed update: "name" (answered with the next step).
        assert _text((await asyncio.wait_for(second, 5)).actions) == "ask age"
        assert _text((await a.handle(_inc(4, "7"))).actions) == "got ann 7"  # the next message, on a
        if a._pg is not None:  # no connection left holding a lock, none checked out
            assert await advisory_locks(settings.database_url) == 0
            for w in (worker_a, worker_b):
                assert w.engine.sync_engine.pool.checkedout() == 0
    finally:
        dialog.release.set()
        await worker_a.close()
        await worker_b.close()


def _policy_inc(update_id: str, user: str = "77", text: str = "住院能报多少") -> Incoming:
    return Incoming("telegram", User(user, "x", language_code="zh-hans"), user, update_id=update_id, text=text)


async def _outbox(app: App) -> list[Outbox]:
    async with app.core.sessions() as s:
        return list((await s.execute(select(Outbox).order_by(Outbox.id))).scalars())


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_redelivered_update_racing_on_two_workers_is_handled_once(
    settings: Settings, clock: FixedClock, world: World
) -> None:
    """The same update delivered to two workers at once (a webhook retried, two pollers): one of them answers
    it and writes its outbox rows, the other drops it (it waits for the user's lock, then finds the update
    recorded); repeatedly, and a new update after that is answered once."""
    worker_a, worker_b = build_core(settings, clock), build_core(settings, clock)
    for w in (worker_a, worker_b):
        w.core.use_outbox(30.0, lambda r: {"text": r.text, "chat_id": r.chat_id})
    try:
        for n in range(8):
            results = await asyncio.gather(
                worker_a.core.handle(_policy_inc(f"rd-{n}")), worker_b.core.handle(_policy_inc(f"rd-{n}"))
            )
            answered = [r for r in results if r.actions]
            assert len(answered) == 1, results
        rows = await _outbox(worker_a)
        assert len(rows) == 8 and len({r.dedup_key for r in rows}) == 8
        assert (await worker_b.core.handle(_policy_inc("rd-next", text="养老"))).actions
        assert len(await _outbox(worker_a)) == 9
        assert await advisory_locks(settings.database_url) == 0
    finally:
        await worker_a.close()
        await worker_b.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_first_contact_racing_on_two_workers(settings: Settings, clock: FixedClock, world: World) -> None:
    """Someone's first two messages handled at once by two workers: one account is created (no unique
    violation), both messages are answered, and the next message finds that account."""
    worker_a, worker_b = build_core(settings, clock), build_core(settings, clock)
    try:
        for n in range(5):
            user = f"fc{n}"
            results = await asyncio.gather(
                worker_a.core.handle(_policy_inc(f"{user}-1", user)),
                worker_b.core.handle(_policy_inc(f"{user}-2", user, "养老")),
            )
            error = worker_a.core.catalogs.get("zh_CN")("core.error")
            assert all(r.actions and _text(r.actions) != error for r in results), results
            async with worker_a.core.sessions() as s:
                ids = (await s.execute(select(Account.id).where(Account.external_id == user))).scalars().all()
            assert len(ids) == 1
            assert (await worker_a.core.handle(_policy_inc(f"{user}-3", user, "那大病呢"))).actions
        async with worker_a.core.sessions() as s:
            asked = (await s.execute(select(PolicyQuestion.account_id))).scalars().all()
        assert len(asked) == 15 and len(set(asked)) == 5
        assert await advisory_locks(settings.database_url) == 0
    finally:
        await worker_a.close()
        await worker_b.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_over_the_budget_leaves_no_lock(settings: Settings, clock: FixedClock, world: World) -> None:
    """Over the message budget the update is counted and recorded and answered "too fast" once, and the
    user's lock is not kept: the other worker's next update of that user (over too) is not held up, and
    a minute later the user is answered again; redelivering an over-budget update does nothing."""
    settings = settings.model_copy(update={"messages_per_minute": 2})
    worker_a, worker_b = build_core(settings, clock), build_core(settings, clock)
    too_fast = worker_a.core.catalogs.get("zh_CN")("security.too_fast")
    try:
        assert (await worker_a.core.handle(_policy_inc("b-1"))).actions
        assert (await worker_a.core.handle(_policy_inc("b-2"))).actions
        assert _text((await worker_a.core.handle(_policy_inc("b-3"))).actions) == too_fast
        assert await advisory_locks(settings.database_url) == 0
        quiet = await asyncio.wait_for(worker_b.core.handle(_policy_inc("b-4")), 5)
        assert quiet.actions == []
        assert (await worker_b.core.handle(_policy_inc("b-3"))).actions == []  # recorded: dropped
        clock.advance(minutes=1)
        assert (await asyncio.wait_for(worker_b.core.handle(_policy_inc("b-5", text="养老")), 5)).actions
        assert await advisory_locks(settings.database_url) == 0
    finally:
        await worker_a.close()
        await worker_b.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_pool_never_hands_out_a_connection_holding_a_lock(
    settings: Settings, clock: FixedClock, world: World
) -> None:
    """Should a connection still marked as holding a user's lock be given back to the pool (the update's
    own error path failed to let it go), the pool closes it instead: the lock ends with the session and
    the user's next update, on another worker, is answered at once."""
    worker_a, worker_b = build_core(settings, clock), build_core(settings, clock)
    try:
        assert (await worker_a.core.handle(_policy_inc("g-1"))).actions  # the account, the catalog read
        engine = worker_a.engine
        async with engine.connect() as conn:
            fairy = await conn.get_raw_connection()
            raw = fairy.dbapi_connection.driver_connection
            await raw.execute(f"SELECT pg_advisory_lock({USER_LOCK_NS}, {user_lock_key('telegram', '77')})")
            fairy.info[HELD] = True
        assert await advisory_locks(settings.database_url) == 0
        assert raw.is_closed()
        result = await asyncio.wait_for(worker_b.core.handle(_policy_inc("g-2", text="养老")), 5)
        assert result.actions
        assert (await worker_a.core.handle(_policy_inc("g-3", text="那大病呢"))).actions  # a new connection
    finally:
        await worker_a.close()
        await worker_b.close()


class Slow(Held):
    """As Held, and every input also runs a statement through the session that must be in the update's
    transaction (it locks the account's row; a plain read would run outside it): the transaction is open
    when its finish statement lets the lock go, committed only after (made slow by the test)."""

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        await ctx.session.execute(select(Account.id).where(Account.id == ctx.account.id).with_for_update())
        return await super().on_input(ctx, st)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_lock_let_go_before_the_commit(
    settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finish statement lets the user's lock go inside the update's transaction, before its COMMIT: the
    next update of that user, on another worker, gets the lock at once but waits for the row lock on the
    account until the COMMIT, and then reads what was committed (here the COMMIT comes 0.5 s later)."""
    worker_a, worker_b = build_core(settings, clock), build_core(settings, clock)
    dialog = Slow()
    dialog.entered, dialog.release = asyncio.Event(), asyncio.Event()
    a, b = _core(worker_a, clock, dialog), _core(worker_b, clock, dialog)
    assert a._pg is not None
    committing = asyncio.Event()
    commit = PgUpdate.commit

    async def slow_commit(self: PgUpdate) -> None:
        committing.set()
        await asyncio.sleep(0.5)
        await commit(self)

    try:
        assert _text((await a.handle(_inc(1, "/held"))).actions) == "ask name"
        monkeypatch.setattr(PgUpdate, "commit", slow_commit)
        first = asyncio.create_task(a.handle(_inc(2, "ann")))
        await asyncio.wait_for(committing.wait(), 10)  # the lock is let go, the COMMIT not sent yet
        second = asyncio.create_task(b.handle(_inc(3, "42")))
        await asyncio.sleep(0.2)
        assert not second.done()
        assert _text((await asyncio.wait_for(first, 10)).actions) == "ask age"
        assert _text((await asyncio.wait_for(second, 10)).actions) == "got ann 42"
        assert _text((await a.handle(_inc(4, "more"))).actions).endswith("got ann 42")
    finally:
        dialog.release.set()
        await worker_a.close()
        await worker_b.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_round_trips_of_a_dialog_step(
    settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dialog's text step whose handler runs nothing through the session: two round trips (the open
    function, the finish statement with the dialog row; no BEGIN, no COMMIT); the next step is right."""
    worker = build_core(settings, clock)
    dialog = Held()
    dialog.entered, dialog.release = asyncio.Event(), asyncio.Event()
    core = _core(worker, clock, dialog)
    try:
        assert _text((await core.handle(_inc(1, "/held"))).actions) == "ask name"  # its row inserted by the finish
        # The first step: its finish statement (the row updated) prepared on this connection, one trip more.
        assert _text((await core.handle(_inc(2, "ann"))).actions) == "ask age"
        trips = Trips(monkeypatch)
        assert _text((await core.handle(_inc(3, "42"))).actions) == "got ann 42"
        assert trips.n == 2
        not_understood = worker.core.catalogs.get("zh_CN")("core.not_understood")
        assert _text((await core.handle(_inc(4, "more"))).actions) == f"{not_understood} | got ann 42"
    finally:
        await worker.close()


class Reader(Held):
    """As Held, and every input first reads through the session (a plain SELECT); "audit" then adds a row
    (flushed with the update), "boom" adds one, flushes it and fails."""

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        await ctx.session.execute(select(Account.id).where(Account.id == ctx.account.id))
        text = (ctx.inc.text or "").strip()
        if text in ("audit", "boom"):
            ctx.audit("test.read_then_write", "account", ctx.account.id, step=st.step)
            if text == "boom":
                await ctx.session.flush()
                raise RuntimeError("boom")
        return await super().on_input(ctx, st)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_reads_run_outside_the_transaction_writes_in_it(
    settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that only reads through the session costs three round trips (open, its SELECT, the finish
    statement: no BEGIN, no COMMIT). A write after the reads still goes in one transaction with the finish
    statement: a failure after the flush keeps nothing of the update (neither the row nor the step), and the
    connection is back to its own setting afterwards (the next update's write is committed with it)."""
    from bot.store.models import AuditLog

    worker = build_core(settings, clock)
    dialog = Reader()
    dialog.entered, dialog.release = asyncio.Event(), asyncio.Event()
    core = _core(worker, clock, dialog)

    async def audits() -> int:
        async with worker.core.sessions() as s:
            return len((await s.execute(select(AuditLog.id).where(AuditLog.action == "test.read_then_write"))).all())

    try:
        assert _text((await core.handle(_inc(1, "/held"))).actions) == "ask name"
        assert _text((await core.handle(_inc(2, "ann"))).actions) == "ask age"  # the SELECT prepared
        trips = Trips(monkeypatch)
        assert _text((await core.handle(_inc(3, "7"))).actions) == "got ann 7"
        assert trips.n == 3  # open, the SELECT, the finish statement
        failed = await core.handle(_inc(4, "boom"))
        assert _text(failed.actions) == worker.core.catalogs.get("zh_CN")("core.error")
        assert await audits() == 0  # the flushed row was rolled back with the update
        async with worker.engine.connect() as conn:  # the pool's connection: back to its own setting
            adapted = (await conn.get_raw_connection()).dbapi_connection
            assert adapted.isolation_level == adapted._isolation_setting and adapted._transaction is None
        not_understood = worker.core.catalogs.get("zh_CN")("core.not_understood")
        assert _text((await core.handle(_inc(5, "audit"))).actions) == f"{not_understood} | got ann 7"
        assert await audits() == 1  # read, then written and committed with the update
    finally:
        await worker.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_memo_and_account_columns_in_one_finish_statement(
    settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update that keeps a memo value and changes the speaker's language: both written by its finish
    statement (two round trips), read back by the next update; a change of another column of the account
    (its display name) is the ORM's, written too."""
    worker = build_core(settings, clock)
    r = Router("both")

    @r.command("both")
    async def both(ctx: Ctx) -> None:
        await ctx.remember("seen", int(ctx.inc.args or "0"))
        ctx.account.language = "en" if ctx.account.language != "en" else "zh_CN"
        if ctx.inc.args == "9":
            ctx.account.display_name = "renamed"
        ctx.reply_text("ok")

    @r.command("show")
    async def show(ctx: Ctx) -> None:
        ctx.reply_text(f"{ctx.memo.get('seen')} {ctx.account.language} {ctx.account.display_name}")

    core = Core(worker.core.settings, clock, worker.core.sessions, worker.core.catalogs, [r], [],
                worker.core.services, None)
    try:
        await core.handle(_inc(1, "/both 1"))
        await core.handle(_inc(2, "/both 2"))
        trips = Trips(monkeypatch)
        assert _text((await core.handle(_inc(3, "/both 3"))).actions) == "ok"
        assert trips.n == 2
        assert _text((await core.handle(_inc(4, "/show"))).actions) == "3 en x"
        assert _text((await core.handle(_inc(5, "/both 9"))).actions) == "ok"
        assert _text((await core.handle(_inc(6, "/show"))).actions) == "9 zh_CN renamed"
    finally:
        await worker.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_streamed_read_runs_in_the_transaction(settings: Settings, clock: FixedClock) -> None:
    """A server-side cursor (stream_results) needs a transaction: it begins one, reads outside one before it
    work as usual, and the next update is fine."""
    worker = build_core(settings, clock)
    r = Router("stream")

    @r.command("stream")
    async def stream(ctx: Ctx) -> None:
        await ctx.session.execute(select(Account.id).where(Account.id == ctx.account.id))  # a plain read
        result = await ctx.session.stream(select(Account.id).where(Account.id == ctx.account.id))
        ids = [row[0] async for row in result]
        ctx.reply_text(f"{len(ids)}")

    core = Core(worker.core.settings, clock, worker.core.sessions, worker.core.catalogs, [r], [],
                worker.core.services, None)
    try:
        assert _text((await core.handle(_inc(1, "/stream"))).actions) == "1"
        assert _text((await core.handle(_inc(2, "/stream"))).actions) == "1"
    finally:
        await worker.close()
