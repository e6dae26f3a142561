"""Shared pieces of the web dashboard tests: a second team out of the leader's scope, a difficulty."""

from __future__ import annotations

import re
from datetime import date, datetime

from bot.core.bootstrap import App
from bot.store.models import Difficulty, Household, Pairing, Person, Team, Village

LINK = re.compile(r"/login/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


def token_of(text: str) -> str:
    found = LINK.search(text)
    assert found, text
    return found.group(1)


async def other_team(app: App) -> dict[str, int]:
    """Another village and team (another leader), with one household: outside the world's leader's scope."""
    async with app.core.sessions() as s, s.begin():
        v = Village(code="V002", name="河口村", township="平安镇", county="示例县", lat=25.1, lon=102.8)
        s.add(v)
        await s.flush()
        team = Team(name="河口村工作队", village_id=v.id)
        s.add(team)
        await s.flush()
        leader = Person(name="钱队长", phone="13900000100", role="leader", team_id=team.id, village_id=v.id)
        cadre = Person(name="孙干部", phone="13900000101", role="cadre", team_id=team.id, village_id=v.id)
        s.add_all([leader, cadre])
        await s.flush()
        team.leader_id = leader.id
        h = Household(code="H900", village_id=v.id, head_name="周外村", members_count=2, address="河口村1组")
        s.add(h)
        await s.flush()
        s.add(Pairing(cadre_id=cadre.id, household_id=h.id, start_date=date(2026, 3, 1)))
        d = Difficulty(idem_key="other-1", reporter_id=cadre.id, team_id=team.id, household_id=h.id,
                       village_id=v.id, category="housing", description="外村的问题", urgency="normal",
                       status="open", created_at=app.core.clock.now())
        s.add(d)
        await s.flush()
        return {"household": h.id, "difficulty": d.id, "leader": leader.id, "team": team.id}


async def add_difficulty(app: App, reporter_id: int, team_id: int, household_id: int, text: str) -> int:
    async with app.core.sessions() as s, s.begin():
        d = Difficulty(idem_key=f"web-{text}", reporter_id=reporter_id, team_id=team_id,
                       household_id=household_id, category="housing", description=text, urgency="high",
                       status="open", created_at=app.core.clock.now())
        s.add(d)
        await s.flush()
        return d.id


async def add_monitor_case(app: App, village_id: int, household_id: int | None, head: str, step: str, *,
                           started: date, due: date | None, open_: bool = True, phase: str = "identify",
                           source: str = "cadre_check", reporter_account_id: int | None = None,
                           opened_at: datetime | None = None, closed_at: datetime | None = None) -> int:
    """A monitoring case standing at `step` (as the state machine would have left it), with its first event;
    a closed one (open_=False) closed now unless `closed_at` says when."""
    from bot.store.models import MonitorCase, MonitorEvent

    now = opened_at or app.core.clock.now()
    if not open_ and closed_at is None:
        closed_at = app.core.clock.now()
    async with app.core.sessions() as s, s.begin():
        c = MonitorCase(household_id=household_id, village_id=village_id, source=source, department="", risks=["illness"],
                        phase=phase, step=step, open=open_, step_started=started, step_due=due, escalation_level=0,
                        head_name=head, description=f"{head}的情况", screening={}, expense_solved=False,
                        guarantees_secured=False, opened_at=now, kind="sudden", closed_at=closed_at,
                        reporter_account_id=reporter_account_id)
        s.add(c)
        await s.flush()
        s.add(MonitorEvent(case_id=c.id, at=now, actor_person_id=None, phase=phase, step=step, action="open",
                           result="", detail={}))
        return c.id


async def add_villager_case(app: App, account_id: int, text: str, *, topic: str = "none", days_ago: int = 0) -> int:
    """A villager's case opened through bot.services.cases (as the chat's triage does), `days_ago` old."""
    from datetime import timedelta

    from bot.services import cases as csvc
    from bot.store.enums import CaseKind
    from bot.store.models import Account

    now = app.core.clock.now() - timedelta(days=days_ago)
    async with app.core.sessions() as s, s.begin():
        account = await s.get(Account, account_id)
        assert account is not None
        opened = await csvc.open_case(s, idem_key=f"web-{text}", account=account, kind=CaseKind.CASE, text=text,
                                      now=now, topic=topic)
        return opened.case.id
