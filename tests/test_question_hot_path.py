"""A villager's question on the hot path (bot/core/rows.py, bot/core/pg_hot.py): the follow-up context kept in
the account memo, the question row added with the update (its id from per-process blocks of the sequence on
PostgreSQL), written before anything that refers to it, and the round trips a question costs."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, select

from bot.clock import FixedClock
from bot.core import engine as engine_mod
from bot.core import pg_hot
from bot.core.bootstrap import App, build_core
from bot.core.context import Ctx
from bot.core.engine import Core
from bot.core.pg_hot import PgHotPath
from bot.core.router import EVERYONE, Router
from bot.core.rows import RowLog
from bot.core.types import Incoming, Reply, User
from bot.handlers.policy import MEMO
from bot.settings import Settings
from bot.store.models import Account, Case, Outbox, PolicyQuestion
from tests.conftest import Chat, World, bind
from tests.pg import Trips, advisory_locks

CASE_TEXT = "我家的低保补贴三个月没到账了，是不是弄错了"


async def _questions(app: App) -> list[PolicyQuestion]:
    async with app.core.sessions() as s:
        return list((await s.execute(select(PolicyQuestion).order_by(PolicyQuestion.id))).scalars())


def _spy_contexts(app: App, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The follow-up context the policy handler hands the parser, question after question."""
    advisor = app.core.services.policy
    assert advisor is not None
    seen: list[Any] = []
    answer = advisor.answer

    def spy(text: str, lang: str = "zh_CN", **kw: Any) -> Any:
        seen.append(kw.get("context"))
        return answer(text, lang, **kw)

    monkeypatch.setattr(advisor, "answer", spy)
    return seen


async def test_follow_up_context_is_the_previous_questions_within_the_window(
    app: App, world: World, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each question gets the context of the speaker's previous question (not its own) while that one is at
    most FOLLOW_UP_MINUTES old, across updates; later, none. Read from the account memo, as the row has it."""
    seen = _spy_contexts(app, monkeypatch)
    chat = Chat(app, "901")
    await chat.send("住院能报多少")
    assert seen == [None]  # the first question has no previous one
    clock.advance(minutes=1)
    await chat.send("县医院呢")  # understood only through the previous question's context
    first, second = await _questions(app)
    assert seen[-1] == first.context and first.context["topic"] == "medical.inpatient"
    assert (second.topic, second.answered) == ("medical.inpatient", True)
    clock.advance(minutes=9, seconds=59)  # still within the ten minutes of the second question
    await chat.send("那大病呢")
    assert seen[-1] == second.context
    clock.advance(minutes=10, seconds=1)  # the third question is now older than the window
    await chat.send("县医院呢")
    assert seen[-1] is None
    # Another account's questions are not this one's context.
    await Chat(app, "902").send("县医院呢")
    assert seen[-1] is None
    questions = await _questions(app)
    async with app.core.sessions() as s:
        account = (await s.execute(select(Account).where(Account.external_id == "901"))).scalar_one()
    last = [q for q in questions if q.account_id == account.id][-1]
    assert account.memo is not None and account.memo[MEMO]["q"] == last.id
    assert account.memo[MEMO]["ctx"] == last.context
    assert datetime.fromisoformat(account.memo[MEMO]["at"]) == last.created_at


async def test_a_clarified_question_passes_its_new_context_on(
    app: App, world: World, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Choosing a topic under a clarifying question changes that question's context; the next question
    gets the changed one (as it would reading the row)."""
    seen = _spy_contexts(app, monkeypatch)
    chat = Chat(app, "903")
    await chat.send("医疗")
    await chat.press_text("医疗救助")
    [q] = await _questions(app)
    assert q.topic == "medical.assistance" and q.context["topic"] == "medical.assistance"
    clock.advance(minutes=1)
    await chat.send("县医院呢")
    assert seen[-1] == q.context


async def test_the_message_after_a_question(app: App, world: World, db_url: str) -> None:
    """After a question (its row written with the update, COMMIT sent straight when the session has nothing
    to flush) the next updates find everything committed and the connection clean: the details button reads
    the logged question, a chat line and a command are answered, and no connection is left in a
    transaction."""
    chat = Chat(app, "904")
    await chat.send("申请低保要带什么材料")
    first = chat.last_text
    await chat.send("谢谢你")
    assert "不客气" in chat.last_text
    await chat.press_text("详细说明")
    assert "民主评议" in chat.last_text and len(chat.last_text) > len(first)
    await chat.send("/help")
    assert "/help" in chat.last_text or "帮助" in chat.last_text
    assert [q.text for q in await _questions(app)] == ["申请低保要带什么材料", "谢谢你"]
    engine = app.core.sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        pool = engine.sync_engine.pool
        assert pool.checkedout() == 0
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert not raw.is_in_transaction()


async def test_a_case_opened_from_a_question_refers_to_its_row(app: App, world: World, db_url: str) -> None:
    """A villager's case made from their message refers to the question row by a foreign key: the row is
    written before the case (on PostgreSQL the first statement through the session writes the waiting rows
    first, with the foreign key checked), both in the update's one transaction."""
    villager = Chat(app, "905")
    await bind(app, villager, household_id=world.households["张大山"])
    await bind(app, Chat(app, "908"), person_id=world.cadre_ids[0])  # the paired cadre, told of the case
    await bind(app, Chat(app, "909"), person_id=world.leader_id)
    app.core.use_outbox(30.0, lambda r: {"text": r.text, "chat_id": r.chat_id})  # several rows: arrays
    sync_engine = app.core.sessions.kw["bind"].sync_engine
    order: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        order.append(statement)

    event.listen(sync_engine, "before_cursor_execute", seen)
    PgHotPath.trace = order.append
    try:
        replies = await villager.send(CASE_TEXT)
    finally:
        event.remove(sync_engine, "before_cursor_execute", seen)
        PgHotPath.trace = None
    [q] = await _questions(app)
    async with app.core.sessions() as s:
        [case] = (await s.execute(select(Case))).scalars().all()
        outbox = list((await s.execute(select(Outbox))).scalars())
    assert len(replies) >= 3 and sorted(r.outbox_key or "" for r in replies) == sorted(o.dedup_key for o in outbox)
    assert {o.chat_id for o in outbox} == {"905", "908", "909"}  # the villager, the cadre and the leader
    assert case.question_id == q.id and case.idem_key == f"q{q.id}" and not q.answered
    if app.core._pg is not None:
        row_write = next(i for i, sql in enumerate(order) if "INSERT INTO policy_questions" in sql)
        case_insert = next(i for i, sql in enumerate(order) if sql.startswith("INSERT INTO cases"))
        assert row_write < case_insert
        assert sum("INSERT INTO policy_questions" in sql for sql in order) == 1  # written once


def _kinds(traced: list[str]) -> list[str]:
    return [
        "open" if "bangfu_open" in s else "alloc" if "nextval" in s else "finish" if "advisory_unlock" in s
        else s.split()[0]
        for s in traced
    ]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_round_trips_per_question_on_postgres(
    app: App, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A villager's question: two round trips — the open function (the lock, the update checked, the budget,
    the speaker) and the finish statement (the question row, the memo, the outbox rows, the update's id, the
    lock let go), each its own transaction: no BEGIN, no COMMIT, nothing through SQLAlchemy; a block of ids
    once per ID_BLOCK questions. The next message is answered as usual."""
    app.core.use_outbox(30.0, lambda r: {"text": r.text, "chat_id": r.chat_id})
    commits: list[Any] = []
    commit_and_close = engine_mod._commit_and_close

    def counted(session: Any) -> None:
        commits.append(session)
        commit_and_close(session)

    monkeypatch.setattr(engine_mod, "_commit_and_close", counted)
    sync_engine = app.core.sessions.kw["bind"].sync_engine
    chat = Chat(app, "906")
    await chat.send("住院能报多少")  # the account is created (by the open function), the catalog read once
    trips = Trips(monkeypatch)
    for text in ("养老", "那大病呢"):
        via_orm: list[str] = []
        traced: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any, _into: list[str] = via_orm) -> None:
            _into.append(statement)

        event.listen(sync_engine, "before_cursor_execute", seen)
        PgHotPath.trace = traced.append
        commits.clear()
        trips.n = 0
        try:
            await chat.send(text)
        finally:
            event.remove(sync_engine, "before_cursor_execute", seen)
            PgHotPath.trace = None
        assert via_orm == [] and commits == []  # no statement, and no commit, through SQLAlchemy
        assert _kinds(traced) == ["open", "finish"]
        assert trips.n == 2
        assert "policy_questions" in traced[-1] and "outbox" in traced[-1] and "memo" in traced[-1]
        assert "processed_updates" in traced[-1]
    # The first question of a block takes it: one more round trip, once per ID_BLOCK questions.
    app.core._pg._ids.clear()  # type: ignore[union-attr]
    traced = []
    PgHotPath.trace = traced.append
    trips.n = 0
    try:
        await chat.send("养老")
    finally:
        PgHotPath.trace = None
    assert _kinds(traced) == ["open", "alloc", "finish"] and trips.n == 3
    await chat.send("谢谢你")  # the next message: answered, and no connection left holding anything
    assert "不客气" in chat.last_text
    assert app.core.sessions.kw["bind"].sync_engine.pool.checkedout() == 0
    assert await advisory_locks(app.core.settings.database_url) == 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_question_ids_unique_across_two_workers(
    settings: Settings, clock: FixedClock, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two worker processes' worth of cores (two engines, two id allocators) take blocks from one sequence:
    every question gets its own id, each worker's ids increase, the rows are all there."""
    monkeypatch.setattr(pg_hot, "ID_BLOCK", 3)  # many blocks in a short test
    a, b = build_core(settings, clock), build_core(settings, clock)
    ids: dict[str, list[int]] = {"a": [], "b": []}
    for name, worker in (("a", a), ("b", b)):  # the ids each worker hands out, in the order it does
        hot = worker.core._pg
        assert hot is not None

        async def next_id(conn: Any, log: Any, _hot: PgHotPath = hot, _ids: list[int] = ids[name]) -> int:
            row_id = await PgHotPath.next_id(_hot, conn, log)
            _ids.append(row_id)
            return row_id

        monkeypatch.setattr(hot, "next_id", next_id)
    texts = ["住院能报多少", "养老", "那大病呢", "县医院呢", "申请低保要带什么材料"]

    async def villager(n: int) -> None:
        for i, text in enumerate(texts):
            worker = a if (n + i) % 2 else b
            inc = Incoming("telegram", User(f"93{n}", "x", language_code="zh-hans"), f"93{n}",
                           update_id=f"93{n}-{i}", text=text)
            assert (await worker.core.handle(inc)).actions

    try:
        await asyncio.gather(*(villager(n) for n in range(6)))
        questions = await _questions(a)
    finally:
        await a.close()
        await b.close()
    assert len(questions) == 6 * len(texts)
    assert len({q.id for q in questions}) == len(questions)
    assert sorted(ids["a"] + ids["b"]) == sorted(q.id for q in questions)
    assert set(ids["a"]).isdisjoint(ids["b"]) and ids["a"] and ids["b"]
    for got in ids.values():
        assert got == sorted(got)


def _rows_router() -> Router:
    """A feature that adds rows in passing and keeps a memo: two rows in one update (several rows of one
    table), read back through the session in the same update, and the memo seen by the next update."""
    r = Router("rows")
    log = RowLog(cast(Table, PolicyQuestion.__table__))

    @r.command("two", roles=EVERYONE)
    async def two(ctx: Ctx) -> None:
        before = dict(ctx.memo)
        first = await ctx.add_row(log, account_id=ctx.account.id, text="一", created_at=ctx.now)
        second = await ctx.add_row(log, account_id=ctx.account.id, text="二", created_at=ctx.now, topic="t")
        await ctx.remember("rows", {"n": (before.get("rows") or {}).get("n", 0) + 2, "last": second})
        await ctx.remember("other", "kept")
        row = await ctx.session.get(PolicyQuestion, first)  # a statement through the session sees the row
        assert row is not None and row.text == "一"
        ctx.reply_text(f"{first}|{second}|{before.get('rows')}")

    @r.command("fail", roles=EVERYONE)
    async def fail(ctx: Ctx) -> None:
        await ctx.add_row(log, account_id=ctx.account.id, text="失败", created_at=ctx.now)
        await ctx.remember("rows", "never")
        raise RuntimeError("the update fails after adding a row, before any statement")

    @r.command("failafter", roles=EVERYONE)
    async def fail_after(ctx: Ctx) -> None:
        await ctx.add_row(log, account_id=ctx.account.id, text="写了又撤", created_at=ctx.now)
        await ctx.session.get(PolicyQuestion, 1)  # writes the waiting row first, in the transaction
        raise RuntimeError("the update fails after its row was written by a statement")

    @r.command("look", roles=EVERYONE)
    async def look(ctx: Ctx) -> None:
        ctx.reply_text(str(await ctx.session.get(PolicyQuestion, 1) is not None))  # a statement, no row added

    @r.command("forget", roles=EVERYONE)
    async def forget(ctx: Ctx) -> None:
        await ctx.remember("rows", None)
        await ctx.remember("other", None)
        ctx.reply_text("ok")

    return r


@pytest.mark.parametrize("hot_path", [True, False])  # False: PostgreSQL through SQLAlchemy only (not asyncpg)
async def test_rows_and_memo_through_any_path(app: App, clock: FixedClock, hot_path: bool) -> None:
    core = Core(app.core.settings, clock, app.core.sessions, app.core.catalogs, [_rows_router()], [],
                app.core.services, None)
    if not hot_path:
        if core._pg is None:
            pytest.skip("no PostgreSQL hot path on this database")
        core._pg = None

    async def send(n: int, text: str) -> str:
        cmd, args = Incoming.parse_command(text)
        inc = Incoming("telegram", User("907", "x"), "907", update_id=f"r-{n}", text=text, command=cmd, args=args)
        return " ".join(a.text or "" for a in (await core.handle(inc)).actions if isinstance(a, Reply))

    first, second, seen = (await send(1, "/two")).split("|")
    assert seen == "None"
    again = (await send(2, "/two")).split("|")
    assert again[2] == str({"n": 2, "last": int(second)})  # the memo the first update kept
    async with app.core.sessions() as s:
        rows = list((await s.execute(select(PolicyQuestion).order_by(PolicyQuestion.id))).scalars())
        account = (await s.execute(select(Account).where(Account.external_id == "907"))).scalar_one()
    assert [(r.text, r.topic, r.answered, r.context, r.confidence) for r in rows] == [
        ("一", "none", False, {}, 0.0), ("二", "t", False, {}, 0.0)
    ] * 2
    assert [r.id for r in rows[:2]] == [int(first), int(second)] and len({r.id for r in rows}) == 4
    assert account.memo == {"rows": {"n": 4, "last": rows[-1].id}, "other": "kept"}
    assert await send(3, "/forget") == "ok"
    async with app.core.sessions() as s:
        account = (await s.execute(select(Account).where(Account.external_id == "907"))).scalar_one()
        is_null = await s.scalar(select(Account.memo.is_(None)).where(Account.id == account.id))
    assert account.memo is None and is_null  # an empty memo is SQL NULL, not JSON null


async def test_a_failed_update_leaves_no_row_behind(app: App, clock: FixedClock) -> None:
    """An update that added a row and then failed (before any statement wrote it) leaves nothing: the next
    updates on the same pooled connection — whose statements would have written waiting rows — write only
    their own, and the memo is not the failed update's."""
    core = Core(app.core.settings, clock, app.core.sessions, app.core.catalogs, [_rows_router()], [],
                app.core.services, None)

    async def send(n: int, text: str) -> list[str]:
        cmd, args = Incoming.parse_command(text)
        inc = Incoming("telegram", User("910", "x"), "910", update_id=f"f-{n}", text=text, command=cmd, args=args)
        return [a.text or "" for a in (await core.handle(inc)).actions if isinstance(a, Reply)]

    engine = app.core.sessions.kw["bind"]
    await send(1, "/two")
    assert await send(2, "/fail") == [core.catalogs.get("zh_CN")("core.error")]
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:  # the failed update took its stand-in mutex away when it ended
            fairy = await conn.get_raw_connection()
            adapted = fairy.dbapi_connection
            assert isinstance(adapted._execute_mutex, asyncio.Lock)
            assert not fairy.info.get(pg_hot.HELD)
            # Had one been left behind (an update's rows waiting, the update over), it would write nothing.
            assert core._pg is not None
            dead = pg_hot.Later(core._pg, adapted.driver_connection, adapted)
            log = RowLog(cast(Table, PolicyQuestion.__table__))
            await dead.add(log, log.values({"account_id": None, "text": "stale", "created_at": clock.now()}))
            dead.live = False
            assert not isinstance(adapted._execute_mutex, asyncio.Lock)
    assert await send(3, "/look") == ["True"]  # its statement must not write the failed update's row
    # A row written early (before a statement through the session) is in the update's transaction: gone
    # with the failed update.
    assert await send(31, "/failafter") == [core.catalogs.get("zh_CN")("core.error")]
    await send(4, "/two")
    await send(5, "/two")
    async with app.core.sessions() as s:
        texts = [r.text for r in (await s.execute(select(PolicyQuestion).order_by(PolicyQuestion.id))).scalars()]
        account = (await s.execute(select(Account).where(Account.external_id == "910"))).scalar_one()
    assert texts == ["一", "二"] * 3
    assert account.memo is not None and account.memo["rows"]["n"] == 6
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:  # the connection the updates took turns on: its real mutex back
            adapted = (await conn.get_raw_connection()).dbapi_connection
            assert isinstance(adapted._execute_mutex, asyncio.Lock)
