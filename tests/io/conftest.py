"""Fixtures for roster import, ledger export and report tests, on the session databases of
tests/conftest.py: copies of the migrated SQLite template, and the PostgreSQL database emptied per test."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.i18n import Catalogs, Translator
from bot.settings import REPO_DIR
from bot.store.db import create_engine, session_factory
from bot.store.models import Household, HouseholdMember, Pairing, Person, Team, Village
from tests.pg import require_pg, truncate_all

COUNTED = (Village, Team, Person, Household, HouseholdMember, Pairing)


@pytest.fixture
def new_sqlite_url(sqlite_template: Path, tmp_path: Path) -> Callable[[], str]:
    """Makes fresh migrated SQLite databases (a copy of the session's template)."""
    counter = iter(range(1000))

    def make() -> str:
        path = tmp_path / f"io-{next(counter)}.sqlite3"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def io_db_url(request: pytest.FixtureRequest, new_sqlite_url: Callable[[], str]) -> str:
    """A migrated, empty database: SQLite always, PostgreSQL too when reachable."""
    if request.param == "sqlite":
        return new_sqlite_url()
    require_pg()
    url: str = request.getfixturevalue("pg_database")  # the session's database, from tests/conftest.py
    asyncio.run(truncate_all(url))
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
