"""The on-loop SQLite dialect (bot.store.sqlite_loop): same results as aiosqlite, and a locked database
never blocks the event loop — it waits in asyncio and goes on when the lock is released."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.bootstrap import build_core
from bot.settings import Settings
from bot.store import sqlite_loop
from bot.store.db import create_engine, session_factory, wal_checkpointer
from bot.store.models import Village


@pytest.fixture
def sqlite_file(sqlite_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "loop.sqlite3"
    shutil.copyfile(sqlite_template, target)
    return target


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    """Another connection (another process, in real life) holding the write lock for a while."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO villages (name, code, township, county, groups_count) VALUES ('锁住村', 'LOCK', '', '', 0)")
    started.set()
    time.sleep(seconds)
    con.execute("COMMIT")
    con.close()


@contextlib.asynccontextmanager
async def _locked_for(path: Path, seconds: float) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions of an on-loop engine on a file whose write lock another connection holds for `seconds`."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}", on_loop=True)
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, seconds, started))
    holder.start()
    started.wait(5)
    try:
        yield session_factory(engine)
    finally:
        holder.join()
        await engine.dispose()


async def test_core_uses_the_loop_dialect_by_default(sqlite_file: Path, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{sqlite_file}"
    app = build_core(Settings(database_url=url, media_dir=tmp_path / "m", telegram_token=None))
    threaded = build_core(
        Settings(database_url=url, media_dir=tmp_path / "m", telegram_token=None, sqlite_on_loop=False)
    )
    try:
        assert app.engine.dialect.driver == "bangfu"
        assert threaded.engine.dialect.driver == "aiosqlite"
    finally:
        await app.close()
        await threaded.close()


async def test_orm_and_core_statements_work_on_the_loop(sqlite_file: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{sqlite_file}", on_loop=True)
    sessions = session_factory(engine)
    try:
        async with sessions() as s, s.begin():
            s.add(Village(name="东坡村", code="DP"))
        async with sessions() as s:
            names = (await s.execute(select(Village.name))).scalars().all()
            assert names == ["东坡村"]
        async with engine.connect() as conn:  # AsyncConnection.execute insists on an await having happened
            assert (await conn.execute(text("SELECT count(*) FROM villages"))).scalar_one() == 1
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
        async with sessions() as s, s.begin():  # a failed statement rolls back like any driver's
            with pytest.raises(IntegrityError):
                s.add(Village(name="东坡村", code="DP"))
                await s.flush()
    finally:
        await engine.dispose()


async def test_a_locked_database_waits_in_asyncio_not_in_sqlite(sqlite_file: Path) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with _locked_for(sqlite_file, 0.4) as sessions:
        tick_task = asyncio.create_task(ticker())
        try:
            t0 = time.monotonic()
            async with sessions() as s, s.begin():  # BEGIN IMMEDIATE: BUSY until the other writer commits
                s.add(Village(name="西坡村", code="XP"))
            waited = time.monotonic() - t0
            async with sessions() as s:
                codes = set((await s.execute(select(Village.code))).scalars())
        finally:
            tick_task.cancel()
    assert codes == {"LOCK", "XP"}  # both writes landed, in order
    assert waited >= 0.2  # it really waited for the lock...
    assert ticks >= 10  # ...while the loop kept serving other work (a blocked loop would tick ~0 times)


async def test_a_lock_held_past_the_deadline_fails_clearly(
    sqlite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_loop, "BUSY_DEADLINE", 0.1)
    async with _locked_for(sqlite_file, 0.5) as sessions:
        with pytest.raises(OperationalError, match="locked"):
            async with sessions() as s, s.begin():
                s.add(Village(name="西坡村", code="XP"))


async def test_wal_is_checkpointed_in_a_thread_not_in_a_commit_on_the_loop(sqlite_file: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{sqlite_file}", on_loop=True)
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    checkpointer.interval = 0.05
    sessions = session_factory(engine)
    try:
        async with engine.connect() as conn:  # the loop's connection never checkpoints by itself
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        assert checkpointer.running
        for i in range(50):
            async with sessions() as s, s.begin():
                s.add(Village(name=f"村{i}", code=f"V{i:03d}", township="镇", county="县"))
        for _ in range(100):  # up to 5 s
            if checkpointer.frames:
                break
            await asyncio.sleep(0.05)
        assert checkpointer.frames > 0  # pages went back to the database file, from the thread
    finally:
        await engine.dispose()
    assert not checkpointer.running  # stopped with the pool's connection
    con = sqlite3.connect(sqlite_file)
    try:  # and nothing was lost on the way
        assert con.execute("SELECT count(*) FROM villages").fetchone()[0] == 50
    finally:
        con.close()
