"""Fixtures for roster import, ledger export and report tests.

SQLite: one database migrated per session, copied into a fresh file per test (migrating each time
would dominate the run time). PostgreSQL, when reachable: one scratch database created per session
with CREATE DATABASE and dropped at the end, emptied before each test that uses it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.i18n import Catalogs, Translator
from bot.settings import REPO_DIR
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from bot.store.models import Household, HouseholdMember, Pairing, Person, Team, Village

PG_URL = os.environ.get("BANGFU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
COUNTED = (Village, Team, Person, Household, HouseholdMember, Pairing)


def _pg_reachable() -> bool:
    u = make_url(PG_URL)
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=1):
            return True
    except OSError:
        return False


async def _pg(url: str, sql: str, fetch: bool = False) -> list[Any]:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres", database=u.database
    )
    try:
        if fetch:
            return list(await conn.fetch(sql))
        await conn.execute(sql)
        return []
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def io_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("io-db") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy
    con.close()
    return path


@pytest.fixture
def new_sqlite_url(io_sqlite_template: Path, tmp_path: Path) -> Callable[[], str]:
    """Makes fresh migrated SQLite databases (a copy of the session's template)."""
    counter = iter(range(1000))

    def make() -> str:
        path = tmp_path / f"io-{next(counter)}.sqlite3"
        shutil.copyfile(io_sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"

    return make


@pytest.fixture(scope="session")
def io_pg_database() -> Iterator[str]:
    if not _pg_reachable():
        if os.environ.get("BANGFU_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required but {PG_URL} is not reachable")
        pytest.skip("PostgreSQL not reachable")
    name = f"bangfu_io_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(PG_URL, f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_pg(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _empty_pg(url: str) -> None:
    async def run() -> None:
        rows = await _pg(
            url,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'",
            fetch=True,
        )
        if rows:
            names = ", ".join(f'"{r["tablename"]}"' for r in rows)
            await _pg(url, f"TRUNCATE {names} RESTART IDENTITY CASCADE")

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def io_db_url(request: pytest.FixtureRequest, new_sqlite_url: Callable[[], str]) -> str:
    """A migrated, empty database: SQLite always, PostgreSQL too when reachable."""
    if request.param == "sqlite":
        return new_sqlite_url()
    url: str = request.getfixturevalue("io_pg_database")
    _empty_pg(url)
    return url


@pytest.fixture
async def sessions(io_db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(io_db_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def sqlite_sessions(
    new_sqlite_url: Callable[[], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """SQLite only, for the many small cases where the backend does not matter."""
    engine = create_engine(new_sqlite_url())
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def io_clock() -> FixedClock:
    """Saturday 28 Nov 2026, 10:00 Beijing time."""
    return FixedClock(datetime(2026, 11, 28, 10, 0))


@pytest.fixture(scope="session")
def zh() -> Translator:
    return Catalogs(REPO_DIR / "locales").get("zh_CN")


@pytest.fixture(scope="session")
def en() -> Translator:
    return Catalogs(REPO_DIR / "locales").get("en")
