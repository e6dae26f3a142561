"""Fixtures for the scheduler tests: migrated databases (SQLite file; PostgreSQL scratch DB when
reachable), session factories, catalogs, a small team with chat accounts, and the fake Bot API."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fake_botapi_lite import FakeBotAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Catalogs
from bot.scheduler.rules import Rules, load_rules
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_async
from bot.store.models import Account, Household, Pairing, Person, Team, Village

PG_URL = os.environ.get("BANGFU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TZ = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """An aware datetime at a Beijing wall-clock time."""
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


class RunningClock:
    """Starts at a chosen local time and runs at real speed (the sender waits for real time)."""

    def __init__(self, start: datetime) -> None:
        import time

        self.tz = TZ
        self._start = start
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        import time

        return (self._start + timedelta(seconds=time.monotonic() - self._t0)).astimezone(UTC)


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


@dataclass
class Team1:
    """One team: leader, township contact, three cadres (C on leave, covered by B), households."""

    team_id: int
    leader: int
    township: int
    a: int
    b: int
    c: int
    hh: dict[str, int]  # code -> household id
    chat: dict[int, str]  # person id -> chat id
    account: dict[int, int]  # person id -> account id


async def seed_team(sessions: async_sessionmaker[AsyncSession], *, english_leader: bool = False) -> Team1:
    """Seed the team; every person has a Telegram account (chat id "c<person id>")."""
    now = local(2026, 2, 1, 9)
    async with sessions() as s, s.begin():
        v = Village(code="V1", name="石桥村", township="平安镇", county="示例县")
        s.add(v)
        await s.flush()
        team = Team(name="石桥村工作队", village_id=v.id)
        s.add(team)
        await s.flush()
        people = {
            "leader": Person(name="赵队长", role="leader", team_id=team.id),
            "township": Person(name="孙镇长", role="township"),
            "a": Person(name="王建国", role="cadre", team_id=team.id),
            "b": Person(name="李红梅", role="cadre", team_id=team.id),
            "c": Person(name="周平", role="cadre", team_id=team.id),
        }
        s.add_all(people.values())
        await s.flush()
        team.leader_id = people["leader"].id
        team.township_contact_id = people["township"].id
        chat: dict[int, str] = {}
        account: dict[int, int] = {}
        for key, p in people.items():
            lang = "en" if (key == "leader" and english_leader) else "zh_CN"
            acc = Account(channel="telegram", external_id=f"u{p.id}", chat_id=f"c{p.id}", person_id=p.id,
                          language=lang, created_at=now)
            s.add(acc)
            await s.flush()
            chat[p.id] = acc.chat_id
            account[p.id] = acc.id
        hh: dict[str, int] = {}
        specs = [("H1", "张大山", "a"), ("H2", "张小山", "a"), ("H3", "陈秀英", "b"), ("H4", "刘老四", "c")]
        for code, head, cadre in specs:
            h = Household(code=code, village_id=v.id, head_name=head)
            s.add(h)
            await s.flush()
            hh[code] = h.id
            s.add(Pairing(cadre_id=people[cadre].id, household_id=h.id, start_date=date(2026, 2, 1)))
        return Team1(team.id, people["leader"].id, people["township"].id, people["a"].id, people["b"].id,
                     people["c"].id, hh, chat, account)
