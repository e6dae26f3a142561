"""The statements every update runs (`Core._open` / `_finish` on SQLite, `bot.core.pg_hot` on PostgreSQL):
what they record and read, on both databases, and the connection handling around them."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.core.pg_hot import user_lock_key
from bot.core.types import Incoming, Reply, User
from bot.store.models import Account, Outbox, ProcessedUpdate, RateLimit
from tests.conftest import Chat
from tests.pg import pg_execute


def _texts(actions: list[object]) -> list[str]:
    return [a.text or "" for a in actions if isinstance(a, Reply)]


async def test_updates_without_an_id_are_each_handled_and_counted(app: App, clock: FixedClock) -> None:
    """No update id (a console, a channel without one): nothing to deduplicate, the budget still counts."""
    inc = Incoming("telegram", User("61", "x"), "61", text="/help", command="help")
    first, second = await app.core.handle(inc), await app.core.handle(inc)
    assert _texts(first.actions) and _texts(first.actions) == _texts(second.actions)
    async with app.core.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 0
        row = await s.get(RateLimit, "msg:telegram:61")
        assert row is not None and row.count == 2


async def test_first_contact_then_the_same_account(app: App, clock: FixedClock) -> None:
    chat = Chat(app, "62", name="阿明")
    await chat.send("/help")
    await chat.send("/lang")
    await chat.press(chat.button("English"))
    await chat.send("/help")
    assert "help" in chat.last_text.lower() or "Help" in chat.last_text
    async with app.core.sessions() as s:
        accounts = list((await s.execute(select(Account).where(Account.external_id == "62"))).scalars())
        assert len(accounts) == 1 and accounts[0].language == "en" and accounts[0].display_name == "阿明"


async def test_outbox_rows_and_sent_marks_in_the_update_transaction(app: App, clock: FixedClock) -> None:
    """With the outbox on, an update's replies are rows written with it; rows the runner confirmed are
    marked sent with the next update's commit; a redelivered update writes nothing again."""
    app.core.use_outbox(30.0, lambda r: {"text": r.text, "chat_id": r.chat_id})
    inc = Incoming("telegram", User("63", "x"), "63", update_id="63-1", text="/help", command="help")
    result = await app.core.handle(inc)
    keys = [a.outbox_key for a in result.actions if isinstance(a, Reply)]
    assert keys and all(keys)
    assert not (await app.core.handle(inc)).actions  # redelivered: dropped, no second row
    for key in keys:
        assert key is not None
        app.core.confirm_sent(key)
    await app.core.handle(Incoming("telegram", User("63", "x"), "63", update_id="63-2", text="/help", command="help"))
    async with app.core.sessions() as s:
        rows = {r.dedup_key: r for r in (await s.execute(select(Outbox))).scalars()}
    assert {rows[k].status for k in keys if k} == {"sent"}
    later = [r for k, r in rows.items() if k not in keys]
    assert later and {r.status for r in later} == {"pending"} and all(r.account_id for r in later)
    assert rows[keys[0] or ""].payload == {"text": _texts(result.actions)[0], "chat_id": "63"}


def test_user_lock_key_is_stable_and_fits_int4() -> None:
    # The same in every worker process and release (CRC-32, not Python's per-process hash()).
    assert user_lock_key("telegram", "123") == -722478104
    keys = {user_lock_key("telegram", str(i)) for i in range(5000)}
    assert len(keys) > 4990 and all(-(2**31) <= k < 2**31 for k in keys)
    assert user_lock_key("telegram", "1") != user_lock_key("wecom", "1")


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_connection_the_server_closed_is_replaced(app: App, db_url: str, clock: FixedClock) -> None:
    """The pool hands out no connection whose socket the server closed (a restart, an idle timeout): the next
    update gets a fresh one instead of failing (no pre-ping round trips on every check-out)."""
    chat = Chat(app, "64")
    await chat.send("/help")
    ok = chat.last_text
    killed = await pg_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        url=db_url, fetch=True,
    )
    assert killed  # the app's pooled connection was among them
    await asyncio.sleep(0.2)  # the loop sees the closed socket
    await chat.send("/help")
    assert chat.last_text == ok


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_idle_connection_is_pinged_and_replaced_if_dead(db_url: str) -> None:
    from sqlalchemy import text

    from bot.store.db import create_engine

    engine = create_engine(db_url, ping_idle_s=0.0, pool_size=1)  # every check-out after the first is "idle"
    pings: list[bool] = []
    real_ping = engine.dialect.do_ping

    def ping(dbapi_conn: object) -> bool:
        pings.append(True)
        if len(pings) == 2:
            raise ConnectionError("no answer")  # a half-open connection: the socket looks fine, nobody answers
        return real_ping(dbapi_conn)

    engine.dialect.do_ping = ping  # type: ignore[method-assign]
    try:
        pids = []
        for _ in range(3):
            async with engine.connect() as c:
                pids.append((await c.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        assert len(pings) == 2
        assert pids[0] == pids[1] != pids[2]  # pinged and kept; then failed the ping and replaced
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_more_updates_than_the_pool_reuse_its_connections(db_url: str) -> None:
    """Updates beyond the pool wait for a pooled connection instead of each opening (and, given back,
    closing) an overflow connection: under a steady load that was a new PostgreSQL connection per update."""
    from sqlalchemy import event, text

    from bot.store.db import create_engine

    engine = create_engine(db_url, pool_size=3)
    opened: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda conn, rec: opened.append(conn))

    async def update() -> int:
        async with engine.connect() as c:
            pid = (await c.execute(text("SELECT pg_backend_pid() FROM pg_sleep(0.02)"))).scalar_one()
            return int(pid)

    try:
        pids = [pid for _ in range(3) for pid in await asyncio.gather(*(update() for _ in range(12)))]
        assert len(pids) == 36
        assert len(opened) == 3 and len(set(pids)) == 3  # the same three backends served all 36
    finally:
        await engine.dispose()
