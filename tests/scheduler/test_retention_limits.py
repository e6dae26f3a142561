"""Issue 10 #3: the daily retention also forgets old rate-limit counters (never a running lock-out) and
rebinding requests decided, or left undecided, for more than a month."""

from __future__ import annotations

from datetime import timedelta

from sched_helpers import local, seed_team
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Catalogs
from bot.scheduler.rules import Rules
from bot.scheduler.tick import run_tick
from bot.store.models import RateLimit, RebindRequest


async def test_daily_tick_forgets_old_limits_and_rebind_requests(
    sessions: async_sessionmaker[AsyncSession], rules: Rules, catalogs: Catalogs
) -> None:
    w = await seed_team(sessions)
    morning = local(2026, 3, 9, 8, 0)
    ago = lambda days: morning - timedelta(days=days)  # noqa: E731
    async with sessions() as s, s.begin():
        s.add_all([
            RateLimit(key="msg:telegram:old", window_start=ago(8), count=3, strikes=0),
            RateLimit(key="msg:telegram:new", window_start=ago(0), count=3, strikes=0),
            RateLimit(key="grp:telegram:-1old", window_start=ago(30), count=60, strikes=0),
            # An invite lock-out whose last wrong code was long ago but that still runs: kept.
            RateLimit(key="invite:telegram:locked", window_start=ago(10), count=0, strikes=9,
                      locked_until=morning + timedelta(hours=1)),
            RateLimit(key="invite:telegram:over", window_start=ago(10), count=0, strikes=2,
                      locked_until=ago(9)),
            RateLimit(key="invite:telegram:recent", window_start=ago(2), count=0, strikes=1, locked_until=ago(1)),
        ])
        account = w.account[w.a]
        s.add_all([
            RebindRequest(account_id=account, person_id=w.b, created_at=ago(60), decided_at=ago(40),
                          decision="ok", decided_by_id=w.leader),
            RebindRequest(account_id=account, person_id=w.b, created_at=ago(40), decided_at=ago(5),
                          decision="no", decided_by_id=w.leader),
            RebindRequest(account_id=account, person_id=w.c, created_at=ago(45)),  # nobody decided: lapsed
            RebindRequest(account_id=account, person_id=w.c, created_at=ago(3)),  # still waiting
        ])
    assert "visit.cadre" in (await run_tick(sessions, rules, catalogs, morning, draft_keep_days=7)).ran
    async with sessions() as s:
        keys = sorted((await s.scalars(select(RateLimit.key))).all())
        requests = sorted((r.decision or "-", r.created_at.date() == ago(3).date())
                          for r in (await s.scalars(select(RebindRequest))).all())
    assert keys == ["invite:telegram:locked", "invite:telegram:recent", "msg:telegram:new"]
    assert requests == [("-", True), ("no", False)]
