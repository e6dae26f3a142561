"""The SQLite hot path (`bot.core.sqlite_hot`): what it loads and writes on the DBAPI connection is what the
ORM would have loaded and written, on both SQLite drivers (on the loop and aiosqlite's thread)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from bot.clock import FixedClock
from bot.core import limits
from bot.core.bootstrap import App
from bot.core.sqlite_hot import SqliteHotPath
from bot.core.types import Incoming, User
from bot.settings import Settings
from bot.store.models import Account, DialogState, Outbox, Person, ProcessedUpdate, RateLimit
from tests.conftest import Chat, World, bind

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

T0 = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)
T1 = datetime(2026, 11, 28, 2, 3, 4, 7, tzinfo=UTC)


@pytest.fixture(params=[True, False], ids=["loop", "aiosqlite"])
def settings(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Settings:
    """Both SQLite drivers: the default on-loop one and aiosqlite's worker thread."""
    return Settings(database_url=db_url, media_dir=tmp_path / "media", telegram_token=None,
                    sqlite_on_loop=request.param)


def _hot(app: App) -> SqliteHotPath:
    hot = app.core._sqlite
    assert hot is not None
    return hot


def _db_path(app: App) -> str:
    return str(app.core._db.url.database)


def _columns(obj: Any) -> dict[str, tuple[str, str]]:
    """Every column attribute with its type and repr (an aware and a naive datetime must differ)."""
    return {
        attr.key: (type(getattr(obj, attr.key)).__name__, repr(getattr(obj, attr.key)))
        for attr in inspect(type(obj)).column_attrs
    }


async def _seed(app: App) -> None:
    """Three speakers: bound with an active dialog (and a parked draft), unbound, bound without a dialog."""
    async with app.core.sessions() as s, s.begin():
        person = Person(name="王芳", phone=None, role="cadre", language=None, active=True, created_at=T0)
        s.add(person)
        await s.flush()
        bound = Account(channel="telegram", external_id="71", chat_id="71", display_name="阿芳",
                        person_id=person.id, language="en", unreachable=True, commands_scope=None,
                        created_at=T0, bound_at=T1)
        plain = Account(channel="telegram", external_id="72", chat_id="72", created_at=T1)
        other = Account(channel="telegram", external_id="73", chat_id="c73", person_id=person.id, created_at=T0)
        s.add_all([bound, plain, other])
        await s.flush()
        s.add_all([
            DialogState(account_id=bound.id, dialog="problem", nonce="old", step="s", data={}, history=[],
                        active=False, created_at=T0, updated_at=T0),
            DialogState(account_id=bound.id, dialog="visit", nonce="n1", step="kind",
                        data={"备注": "家里有人\n\"引号\"", "n": 3, "x": None, "f": 2.5, "l": [1, {"a": True}]},
                        history=["household", "date"], active=True, created_at=T0, updated_at=T1),
        ])


async def test_the_speaker_loads_as_the_orm_loads_it(app: App) -> None:
    """Account, person and active dialog from the raw SELECT equal an ORM load of the same statement:
    values and their types (aware UTC timestamps, decoded JSON, booleans, None columns), and each instance
    persistent in the session with a clean history."""
    await _seed(app)
    hot = _hot(app)
    for external_id in ("71", "72", "73", "nobody"):
        async with app.core.sessions() as s:
            orm_row = (
                await s.execute(app.core._stmts.speaker, {"channel": "telegram", "external_id": external_id})
            ).first()
        async with app.core.sessions() as s:

            def load(session: Session, who: str = external_id) -> Any:
                return hot.load_speaker(session, session.connection(), "telegram", who)

            raw = await s.run_sync(load)
            if orm_row is None:
                assert raw is None and external_id == "nobody"
                continue
            assert raw is not None
            for orm_obj, raw_obj in zip(orm_row, raw, strict=True):
                if orm_obj is None:
                    assert raw_obj is None
                    continue
                assert type(raw_obj) is type(orm_obj)
                assert _columns(raw_obj) == _columns(orm_obj)
                state, orm_state = inspect(raw_obj), inspect(orm_obj)
                assert state.persistent and state.session_id == s.sync_session.hash_key
                assert state.key == orm_state.key and not state.modified
                assert state.unloaded == orm_state.unloaded
                assert await s.get(type(raw_obj), state.key[1]) is raw_obj  # from the identity map
            assert s.sync_session._is_clean()
            with pytest.raises(InvalidRequestError):  # one instance per row in a session, as Session.add
                await s.run_sync(load)
    # The three speakers differ where it matters: a person and an active dialog, neither, a person only.
    loaded = []
    for who in ("71", "72", "73"):  # each in a session of its own, as each update has
        async with app.core.sessions() as s:
            loaded.append(await s.run_sync(lambda ss, w=who: hot.load_speaker(ss, ss.connection(), "telegram", w)))
    shapes = [None if row is None else tuple(x is not None for x in row) for row in loaded]
    assert shapes == [(True, True, True), (True, False, False), (True, True, False)]
    first = loaded[0]
    assert first is not None and first[2] is not None
    assert first[2].dialog == "visit" and first[2].data["备注"] == "家里有人\n\"引号\"" and first[2].updated_at == T1


async def test_changes_to_raw_loaded_instances_are_flushed_by_the_orm(app: App) -> None:
    await _seed(app)
    hot = _hot(app)
    async with app.core.sessions() as s:
        loaded = await s.run_sync(lambda ss: hot.load_speaker(ss, ss.connection(), "telegram", "71"))
        assert loaded is not None
        account, person, _dialog = loaded
        assert person is not None
        account.language, person.phone = "zh_CN", "13912345678"
        await s.commit()
    async with app.core.sessions() as s:
        got = (await s.execute(select(Account).where(Account.external_id == "71"))).scalar_one()
        assert got.language == "zh_CN" and got.bound_at == T1
        assert (await s.get(Person, got.person_id)).phone == "13912345678"  # type: ignore[union-attr]


async def test_the_dialog_row_is_stored_as_the_orm_stores_it(app: App) -> None:
    """The raw UPDATE of the active dialog leaves the very column text an ORM flush of the same values
    leaves (JSON with Chinese and quotes, UTC timestamps, the boolean)."""
    await _seed(app)
    hot = _hot(app)
    data = {"备注": "讲了\"医保\"政策", "ids": [3, 1], "none": None}
    async with app.core.sessions() as s:

        def raw_write(session: Session) -> None:
            row = session.execute(select(DialogState).where(DialogState.nonce == "n1")).scalar_one()
            row.nonce, row.step, row.data, row.history = "n2", "note", data, ["household", "date", "kind"]
            row.updated_at = T1.replace(microsecond=999999)
            hot.save_dialog(session.connection(), row)
            session.expunge(row)
            session.commit()

        await s.run_sync(raw_write)
    async with app.core.sessions() as s, s.begin():
        row = (await s.execute(select(DialogState).where(DialogState.nonce == "old"))).scalar_one()
        row.nonce, row.step, row.data, row.history = "n3", "note", data, ["household", "date", "kind"]
        row.active, row.created_at, row.updated_at = True, T0, T1.replace(microsecond=999999)
    con = sqlite3.connect(_db_path(app))
    try:
        cols = "step, data, history, active, created_at, updated_at"
        raw = con.execute(f"SELECT {cols} FROM dialog_states WHERE nonce = 'n2'").fetchone()
        orm = con.execute(f"SELECT {cols} FROM dialog_states WHERE nonce = 'n3'").fetchone()
    finally:
        con.close()
    assert raw == orm


async def test_updates_on_the_hot_path(app: App, world: World, clock: FixedClock) -> None:
    """A first-time account, a redelivered update, a cadre's dialog steps (the row written raw each step),
    then the connection left clean: the same on both drivers."""
    app.core.use_outbox(30.0, lambda r: {"text": r.text, "chat_id": r.chat_id})
    stranger = Chat(app, "74", name="新来的")
    first = await stranger.send("/help")
    assert first and first[0].outbox_key
    inc = Incoming("telegram", User("74", "新来的", language_code="zh-hans"), "74", update_id="74-1",
                   text="/help", command="help")
    assert (await app.core.handle(inc)).actions == []  # redelivered: dropped
    async with app.core.sessions() as s:
        accounts = list((await s.execute(select(Account).where(Account.external_id == "74"))).scalars())
        assert len(accounts) == 1 and accounts[0].display_name == "新来的" and accounts[0].created_at == clock.now()
        outbox = list((await s.execute(select(Outbox).where(Outbox.account_id == accounts[0].id))).scalars())
        assert [o.dedup_key for o in outbox] == [first[0].outbox_key]
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 1
    cadre = Chat(app, "75")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await cadre.send("/visit")
    await cadre.press_text("张大山")
    clock.advance(seconds=30)
    await cadre.press_text("今天")
    async with app.core.sessions() as s:
        account = (await s.execute(select(Account).where(Account.external_id == "75"))).scalar_one()
        row = (await s.execute(select(DialogState).where(DialogState.account_id == account.id))).scalar_one()
    assert row.active and row.dialog == "visit" and len(row.history) == 2
    assert row.updated_at == clock.now() and row.updated_at.tzinfo is UTC and row.data
    await cadre.press_text("日常走访")
    async with app.core.sessions() as s:
        row = (await s.execute(select(DialogState).where(DialogState.account_id == account.id))).scalar_one()
    # A multi-choice step: the same step, the choice kept in the row's JSON
    assert row.step == "kind" and row.data["kinds"] == ["routine"] and row.data["hh_name"] == "张大山"
    conn = app.core.update_connection
    if app.core._update_lock is not None:  # on the loop the core keeps its connection, outside a transaction
        assert conn is not None and not conn.in_transaction()
    else:
        assert conn is None
    assert app.core._db.sync_engine.pool.checkedout() == (1 if conn is not None else 0)


async def test_sent_marks_and_a_budget_over_its_limit(app: App, clock: FixedClock) -> None:
    """Rows the runner confirmed are marked sent (with their time) by the next update's commit; an account
    over its budget gets one answer, then silence, and its count is kept."""
    app.core.settings = app.core.settings.model_copy(update={"messages_per_minute": 3})
    app.core.use_outbox(30.0, lambda r: {"text": r.text})
    chat = Chat(app, "76")
    keys = [r.outbox_key for r in await chat.send("/help")]
    for key in keys:
        assert key
        app.core.confirm_sent(key)
    clock.advance(seconds=1)
    await chat.send("/help")
    async with app.core.sessions() as s:
        rows = {o.dedup_key: o for o in (await s.execute(select(Outbox))).scalars()}
    assert {rows[k].status for k in keys if k} == {"sent"}
    assert {rows[k].sent_at for k in keys if k} == {clock.now()}
    assert [o.status for k, o in rows.items() if k not in keys] == ["pending"]
    await chat.send("/help")
    over = await chat.send("/help")
    assert len(over) == 1 and over[0].outbox_key is None and "太快" in (over[0].text or "")
    assert await chat.send("/help") == []
    async with app.core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Outbox)) == 3
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 5


async def test_many_sent_keys_are_marked_in_chunks(app: App, clock: FixedClock) -> None:
    app.core.use_outbox(30.0, lambda r: {"text": r.text})
    chat = Chat(app, "77")
    keys: list[str] = []
    for _ in range(3):
        keys += [r.outbox_key or "" for r in await chat.send("/help")]
    for key in keys:
        app.core.confirm_sent(key)
    for i in range(450):  # keys of rows that do not exist: nothing to mark, nothing fails
        app.core.confirm_sent(f"u:telegram::none-{i}")
    await chat.send("/help")
    assert app.core._sent_keys == []
    async with app.core.sessions() as s:
        status = {k: v for k, v in (await s.execute(select(Outbox.dedup_key, Outbox.status))).all()}
    assert [status[k] for k in keys] == ["sent"] * len(keys) and list(status.values()).count("pending") == 1


async def test_raw_timestamps_are_stored_as_the_orm_stores_them(app: App, clock: FixedClock) -> None:
    """The dedup row's time, the budget's window and the outbox row's times written on the DBAPI connection
    are the text an ORM write of the same value leaves (sqlite3's own datetime adapter would store
    "…:00+00:00" where SQLAlchemy stores "…:00.000000", and text is what SQLite compares)."""
    app.core.use_outbox(30.0, lambda r: {"text": r.text})
    now = clock.now()
    await Chat(app, "78").send("/help")
    key = limits.message_key("telegram", "78")
    async with app.core.sessions() as s, s.begin():
        s.add(ProcessedUpdate(channel="orm", bot_id="", update_id="1", at=now))
        s.add(RateLimit(key="orm", window_start=limits.minute_window(now), count=1, strikes=0))
        s.add(Outbox(dedup_key="orm", channel="telegram", chat_id="78", rule="reply", payload={}, status="pending",
                     not_before=now + timedelta(seconds=30), attempts=1, last_error="", created_at=now))
    con = sqlite3.connect(_db_path(app))
    try:
        def text(sql: str, *args: str) -> list[Any]:
            return [r[0] for r in con.execute(sql, args)]

        ats = text("SELECT at FROM processed_updates ORDER BY channel")
        windows = text("SELECT window_start FROM rate_limits WHERE key IN (?, 'orm') ORDER BY key", key)
        nbs = text("SELECT not_before || ' ' || created_at FROM outbox ORDER BY dedup_key = 'orm'")
    finally:
        con.close()
    assert len(ats) == 2 and ats[0] == ats[1]
    assert len(windows) == 2 and windows[0] == windows[1] and windows[0].endswith(":00.000000")
    assert len(nbs) == 2 and nbs[0] == nbs[1]


@pytest.mark.parametrize("use_session", [False, True], ids=["raw-only", "session-joined"])
async def test_a_failed_update_leaves_nothing_and_no_lock(
    app: App, use_session: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that fails, before or after running a statement through the session: the update's rows
    (its dedup row, its budget count) are rolled back at once and the write lock released, so another
    connection can write and the redelivered update is handled."""
    chat = Chat(app, "79")
    await chat.send("/help")
    dispatch = app.core._dispatch

    async def failing(ctx: Any) -> None:
        if use_session:
            await ctx.session.execute(select(func.count()).select_from(Account))
        raise RuntimeError("handler failed")

    monkeypatch.setattr(app.core, "_dispatch", failing)
    inc = Incoming("telegram", User("79", "x", language_code="zh-hans"), "79", update_id="79-x", text="/help",
                   command="help")
    failed = await app.core.handle(inc)
    assert len(failed.actions) == 1 and failed.actions[0].outbox_key is None  # type: ignore[union-attr]
    conn = app.core.update_connection
    assert conn is None or not conn.in_transaction()
    other = sqlite3.connect(_db_path(app), timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # the write lock is free
        assert other.execute("SELECT count(*) FROM processed_updates WHERE update_id = '79-x'").fetchone() == (0,)
        other.rollback()
    finally:
        other.close()
    monkeypatch.setattr(app.core, "_dispatch", dispatch)
    assert (await app.core.handle(inc)).actions
    async with app.core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 2
