"""Helpers for the scheduler tests (a module of its own, so test files never import `conftest`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import Account, Household, Pairing, Person, Team, Village

TZ = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """An aware datetime at a Beijing wall-clock time."""
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


class RunningClock:
    """Starts at a chosen local time and runs at real speed (the sender waits for real time)."""

    def __init__(self, start: datetime) -> None:
        self.tz = TZ
        self._start = start
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return (self._start + timedelta(seconds=time.monotonic() - self._t0)).astimezone(UTC)


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
