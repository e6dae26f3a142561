"""Shared fixtures: a migrated database per test (SQLite file; PostgreSQL when reachable), the core
built through the same composition root as production, a small seeded world, and a chat driver."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FixedClock
from bot.core.bootstrap import App, build_core
from bot.core.types import (
    AnswerCallback,
    Contact,
    FileRef,
    Incoming,
    InlineKeyboard,
    Location,
    Outgoing,
    Reply,
    User,
)
from bot.settings import Settings
from tests.fakebotapi import FakeBotAPI
from tests.pg import database_url, pg_execute, require_pg, truncate_all

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _in_thread(fn: Any, *args: Any) -> Any:
    """Run fn in a fresh thread (Alembic's env runs its own event loop)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test session; each test gets a copy."""
    from bot.store.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    _in_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy
    con.close()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database migrated once per test session; tests empty it before use."""
    require_pg()
    from bot.store.migrate import upgrade

    name = f"bangfu_t_{uuid.uuid4().hex[:10]}"
    _in_thread(lambda: asyncio.run(pg_execute(f'CREATE DATABASE "{name}"')))
    url = database_url(name)
    _in_thread(upgrade, url)
    yield url
    _in_thread(lambda: asyncio.run(pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A freshly migrated, empty database: a copy of a migrated SQLite file, or the session's PostgreSQL
    database emptied."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "bangfu.sqlite3"
        shutil.copyfile(template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    require_pg()
    url: str = request.getfixturevalue("pg_database")
    await truncate_all(url)
    yield url


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    """The local fake Telegram Bot API server (tests/fakebotapi.py), started for the test."""
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
def clock() -> FixedClock:
    """Saturday 28 Nov 2026, 10:00 Beijing time."""
    return FixedClock(datetime(2026, 11, 28, 10, 0))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, media_dir=tmp_path / "media", telegram_token=None)


@pytest.fixture
async def app(settings: Settings, clock: FixedClock) -> AsyncIterator[App]:
    app = build_core(settings, clock)
    yield app
    await app.close()


# --------------------------------------------------------------------------- seeded world
@dataclass
class World:
    """A small village: one team (leader + two cadres), households paired to each cadre."""

    village_id: int
    team_id: int
    leader_id: int
    cadre_ids: list[int]
    households: dict[str, int]  # head name -> id
    villager_household: int


async def seed_world(app: App) -> World:
    from bot.store.models import Household, Pairing, Person, Team, Village

    async with app.core.sessions() as s, s.begin():
        v = Village(code="V001", name="石桥村", township="平安镇", county="示例县", groups_count=10, lat=25.0, lon=102.7)
        s.add(v)
        await s.flush()
        team = Team(name="石桥村工作队", village_id=v.id)
        s.add(team)
        await s.flush()
        leader = Person(name="赵队长", phone="13900000000", role="leader", team_id=team.id, village_id=v.id)
        c1 = Person(name="王建国", phone="13900000001", role="cadre", team_id=team.id, village_id=v.id)
        c2 = Person(name="李红梅", phone="13900000002", role="cadre", team_id=team.id, village_id=v.id)
        s.add_all([leader, c1, c2])
        await s.flush()
        team.leader_id = leader.id
        hh: dict[str, int] = {}
        specs = [
            ("张大山", c1, 25.001, 102.701, "13800000001"),
            ("张小山", c1, 25.002, 102.702, None),
            ("刘老四", c1, 25.003, 102.703, None),
            ("陈秀英", c2, 25.004, 102.704, "13800000004"),
        ]
        for i, (head, cadre, lat, lon, phone) in enumerate(specs, 1):
            h = Household(
                code=f"H{i:03d}",
                village_id=v.id,
                group_no=i,
                head_name=head,
                members_count=3 + i,
                phone=phone,
                address=f"石桥村{i}组",
                lat=lat,
                lon=lon,
                poverty_causes=["illness", "labour"] if i % 2 else ["schooling"],
                status="lifted",
                income_per_head=8000 + i * 100,
                plan="发展养殖，安排公益岗位",
            )
            s.add(h)
            await s.flush()
            hh[head] = h.id
            s.add(Pairing(cadre_id=cadre.id, household_id=h.id, start_date=date(2026, 3, 1)))
        return World(v.id, team.id, leader.id, [c1.id, c2.id], hh, hh["陈秀英"])


@pytest.fixture
async def world(app: App) -> World:
    return await seed_world(app)


# --------------------------------------------------------------------------- chat driver
@dataclass
class Chat:
    """Talks to the core as one user, the way a runner would, and keeps what came back."""

    app: App
    user_id: str
    name: str = "tester"
    language_code: str | None = "zh-hans"
    replies: list[Outgoing] = field(default_factory=list)
    _update: int = 0

    async def send(self, text: str | None = None, **kw: Any) -> list[Reply]:
        cmd, args = Incoming.parse_command(text) if text else (None, "")
        return await self._go(text=text, command=cmd, args=args, **kw)

    async def press(self, data: str) -> list[Reply]:
        return await self._go(callback_data=data, callback_id=f"cb{self._update + 1}")

    async def press_text(self, label: str) -> list[Reply]:
        """Press the inline button whose text contains label, in the latest replies."""
        return await self.press(self.button(label))

    async def location(self, lat: float, lon: float) -> list[Reply]:
        return await self._go(location=Location(lat, lon))

    async def contact(self, phone: str, own: bool | None = True) -> list[Reply]:
        """Share a contact card: one's own (True), another user's (False), or from the address book with
        no user id at all (None)."""
        user_id = self.user_id if own else None if own is None else "999"
        return await self._go(contact=Contact(phone=phone, user_id=user_id))

    async def photo(self, file_id: str) -> list[Reply]:
        return await self._go(files=(FileRef(file_id=file_id, unique_id=file_id + "u"),))

    async def _go(self, **kw: Any) -> list[Reply]:
        self._update += 1
        inc = Incoming(
            channel="telegram",
            user=User(self.user_id, self.name, language_code=self.language_code),
            chat_id=self.user_id,
            update_id=f"{self.user_id}-{self._update}",
            **kw,
        )
        result = await self.app.core.handle(inc)
        self.replies.extend(result.actions)
        return [a for a in result.actions if isinstance(a, Reply)]

    @property
    def last_text(self) -> str:
        texts = [a.text for a in self.replies if isinstance(a, Reply) and a.chat_id == self.user_id and a.text]
        return texts[-1] if texts else ""

    def button(self, label: str) -> str:
        for a in reversed(self.replies):
            if isinstance(a, Reply) and isinstance(a.markup, InlineKeyboard):
                for row in a.markup.rows:
                    for b in row:
                        if label in b.text and b.data:
                            return b.data
        raise AssertionError(f"no button {label!r} in the latest replies")

    def toasts(self) -> list[str]:
        return [a.text or "" for a in self.replies if isinstance(a, AnswerCallback)]


async def bind(app: App, chat: Chat, person_id: int | None = None, household_id: int | None = None) -> None:
    """Bind a chat to a person or household through a real invite code."""
    from bot.services.onboarding import create_invite
    from bot.store.models import Household, Person

    async with app.core.sessions() as s, s.begin():
        person = await s.get(Person, person_id) if person_id else None
        household = await s.get(Household, household_id) if household_id else None
        invite = await create_invite(s, app.core.clock.now(), person=person, household=household)
        code = invite.code
    await chat.send(f"/start {code}")
