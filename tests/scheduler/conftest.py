"""Fixtures for the scheduler tests: migrated databases (SQLite file; PostgreSQL scratch DB when
reachable), session factories, catalogs, a small team with chat accounts, and the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_botapi_lite import FakeBotAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Catalogs
from bot.scheduler.rules import Rules, load_rules
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_async
from tests.pg import require_pg, truncate_all


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sched.sqlite3'}"
    await upgrade_async(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sched_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database on each backend: a SQLite file, and the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'sched.sqlite3'}"
        await upgrade_async(url)
        yield url
        return
    require_pg()
    url: str = request.getfixturevalue("pg_database")  # the session's database, from tests/conftest.py
    await truncate_all(url)
    yield url


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
