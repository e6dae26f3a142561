"""The scheduler running for real (APScheduler + sender over HTTP), the leaders' reports, and rules."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from fake_botapi_lite import FakeBotAPI
from pydantic import ValidationError
from sched_helpers import RunningClock, local, seed_team
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Catalogs
from bot.runners.http_transport import HttpTransport
from bot.scheduler.chart import week_chart
from bot.scheduler.reports import overdue_report, week_report, weekly_digest
from bot.scheduler.rules import Rules, load_rules
from bot.scheduler.runner import run_scheduler
from bot.scheduler.sender import SenderConfig
from bot.settings import Settings
from bot.store.models import CheckIn, Visit

Sessions = async_sessionmaker[AsyncSession]


async def test_run_scheduler_ticks_and_sends(sqlite_url: str, sqlite_sessions: Sessions, rules: Rules,
                                             catalogs: Catalogs) -> None:
    w = await seed_team(sqlite_sessions)
    clock = RunningClock(local(2026, 3, 9, 8, 40))  # Monday morning
    api = FakeBotAPI(chat_gap=0.0, overall_limit=1000)
    stop = asyncio.Event()
    cfg = SenderConfig(rate_per_s=100, per_chat_interval_s=0.01, poll_interval_s=0.05)
    async with api, HttpTransport(api.token, api.url) as transport:
        task = asyncio.create_task(run_scheduler(
            Settings(database_url=sqlite_url), clock, transport, stop,
            sessions=sqlite_sessions, rules=rules, catalogs=catalogs, sender_config=cfg))
        async with asyncio.timeout(20):
            while not any(a.method == "sendPhoto" for a in api.accepted):  # noqa: ASYNC110 - the digest chart
                await asyncio.sleep(0.05)
        stop.set()
        await task
    plans = [a.chat_id for a in api.accepted if a.text and "新的一周" in a.text]
    assert sorted(plans) == sorted(w.chat[p] for p in (w.a, w.b, w.c))
    leader = [a for a in api.accepted if a.chat_id == w.chat[w.leader]]
    assert any("逾期未走访" in (a.text or "") for a in leader)
    assert any(a.method == "sendPhoto" and a.photo_size > 1000 for a in leader)


async def test_leader_reports(sessions: Sessions, rules: Rules, catalogs: Catalogs) -> None:
    w = await seed_team(sessions, english_leader=True)
    today = date(2026, 3, 12)  # Thursday
    async with sessions() as s, s.begin():
        s.add(Visit(idem_key="v1", household_id=w.hh["H3"], cadre_id=w.b, visit_date=date(2026, 3, 10),
                    kind="routine", created_at=local(2026, 3, 10, 10)))
        s.add(CheckIn(cadre_id=w.b, day=date(2026, 3, 10), at=local(2026, 3, 10, 9)))
        s.add(CheckIn(cadre_id=w.b, day=date(2026, 3, 11), at=local(2026, 3, 11, 9)))
        s.add(CheckIn(cadre_id=w.a, day=date(2026, 3, 11), at=local(2026, 3, 11, 9)))
    zh, en = catalogs.get("zh_CN"), catalogs.get("en")
    async with sessions() as s:
        rep = await overdue_report(s, w.leader, today, t=zh, rules=rules)
        # Pairings began 1 Feb with no visit: due 3 March, so 9 days overdue on the 12th; H3 was visited.
        assert {r.household_code for r in rep.overdue} == {"H1", "H2", "H4"}
        assert all(r.days_overdue == 9 for r in rep.overdue)
        assert "王建国" in rep.text and "张大山" in rep.text and "超期 9 天" in rep.text and "陈秀英" not in rep.text
        assert rep.text.index("王建国") < rep.text.index("张大山")  # grouped under the cadre

        wk = await week_report(s, w.leader, today, t=en, rules=rules)
        by = {r.cadre_name: (r.checkin_days, r.visits) for r in wk.weeks}
        assert by == {"王建国": (1, 0), "李红梅": (2, 1), "周平": (0, 0)}
        assert "2 still short" in wk.text and "2/2 village days, 1 visits" in wk.text

        none = await overdue_report(s, w.a, today, t=zh, rules=rules)  # a cadre leads no team
        assert none.overdue == [] and "工作队长" in none.text

        dg = await weekly_digest(s, w.leader, date(2026, 3, 16), t=zh, fallback=en, rules=rules)
        assert dg.chart_png is not None and dg.chart_png.startswith(b"\x89PNG")
        assert "李红梅" in dg.text and "驻村 2/2 天" in dg.text


def test_chart_without_cjk_font_uses_pinyin(catalogs: Catalogs, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.scheduler.chart as chart

    monkeypatch.setattr(chart, "cjk_font", lambda: None)
    png = week_chart(catalogs.get("zh_CN"), catalogs.get("en"), "石桥村工作队", "2026-03-09",
                     ["王建国", "Li"], [3, 1], [2, 0], 2)
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert chart._ascii_name("王建国") == "Wang Jian Guo"


def test_rules_override(tmp_path: Path) -> None:
    f = tmp_path / "county.toml"
    f.write_text('[seasons.spring]\nstart = "02-20"\nend = "04-10"\n[village_days]\ntarget = 3\n'
                 '[quiet_hours]\nstart = "22:00"\n', encoding="utf-8")
    r = load_rules(f, timezone="Asia/Urumqi")
    assert r.seasons.spring.dates(2026) == (date(2026, 2, 20), date(2026, 4, 10))
    assert r.seasons.summer == load_rules().seasons.summer  # untouched keys keep the default
    assert r.village_days.target == 3 and r.village_days.nudge_weekday == 4
    assert r.timezone == "Asia/Urumqi" and r.quiet_hours.end.hour == 7
    assert r.calendar.add_working_days(date(2026, 3, 6), 2) == date(2026, 3, 10)  # Fri + 2 = Tue
    bad = tmp_path / "bad.toml"
    bad.write_text('[seasons.autumn]\nstart = "10-31"\nend = "09-01"\n', encoding="utf-8")
    with pytest.raises(ValidationError):
        load_rules(bad)


def test_long_lists_fit_one_message(catalogs: Catalogs) -> None:
    from bot.scheduler.render import MAX_TEXT, join_limited, paginate

    t = catalogs.get("zh_CN")
    lines = [f"• 户主{i}（H{i:05d}）超期 {i} 天" for i in range(100)]
    text = join_limited(t, "标题", lines)
    assert text.endswith("……还有 40 条没列出。") and "户主59" in text and "户主60" not in text
    pages = paginate("标题", lines * 10)
    assert all(len(p) <= MAX_TEXT for p in pages) and sum(p.count("•") for p in pages) == 1000
