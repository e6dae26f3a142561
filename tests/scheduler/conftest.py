"""Fixtures for the scheduler tests: migrated databases (SQLite file; PostgreSQL scratch DB when
reachable), session factories, catalogs, a small team with chat accounts, and the fake Bot API."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_botapi_lite import FakeBotAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Catalogs
from bot.scheduler.rules import Rules, load_rules
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_async

PG_URL = os.environ.get("BANGFU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    u = make_url(PG_URL)
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=1):
            return True
    except OSError:
        return False


async def _pg_admin(sql: str) -> None:
    import asyncpg

    u = make_url(PG_URL)
    conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                                 database=u.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sched.sqlite3'}"
    await upgrade_async(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sched_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database on each backend: a SQLite file, and a uniquely named PostgreSQL scratch DB."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'sched.sqlite3'}"
        await upgrade_async(url)
        yield url
        return
    if not _pg_reachable():
        pytest.skip("PostgreSQL not reachable")
    name = f"bangfu_sched_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        yield url
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sessions(sched_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(sched_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def sqlite_sessions(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(sqlite_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def catalogs() -> Catalogs:
    return Catalogs(Settings().locales_dir)


@pytest.fixture
def rules() -> Rules:
    return load_rules()


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as api:
        yield api
