"""A simulated spring on a real database: ticks at chosen local times, then what the outbox holds.

Runs on a SQLite file and on PostgreSQL when reachable.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from sched_helpers import Team1, local, seed_team
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import Catalogs
from bot.scheduler.rules import Rules
from bot.scheduler.tick import run_tick
from bot.store.db import create_engine, session_factory
from bot.store.models import CheckIn, Difficulty, Leave, Outbox, Visit

Sessions = async_sessionmaker[AsyncSession]


async def add_visit(sessions: Sessions, household: int, cadre: int, day: date, kind: str = "routine") -> None:
    async with sessions() as s, s.begin():
        s.add(Visit(idem_key=f"v{household}-{day}-{kind}", household_id=household, cadre_id=cadre, visit_date=day,
                    kind=kind, created_at=datetime.combine(day, datetime.min.time()).astimezone()))


async def add_checkin(sessions: Sessions, cadre: int, day: date) -> None:
    async with sessions() as s, s.begin():
        s.add(CheckIn(cadre_id=cadre, day=day, at=local(day.year, day.month, day.day, 9)))


async def outbox(sessions: Sessions, rule: str | None = None, chat: str | None = None) -> list[Outbox]:
    async with sessions() as s:
        stmt = select(Outbox).order_by(Outbox.id)
        if rule is not None:
            stmt = stmt.where(Outbox.rule == rule)
        if chat is not None:
            stmt = stmt.where(Outbox.chat_id == chat)
        return list((await s.scalars(stmt)).all())


def text(row: Outbox) -> str:
    return row.payload["text"] or ""


async def test_simulated_spring(sessions: Sessions, rules: Rules, catalogs: Catalogs) -> None:
    w: Team1 = await seed_team(sessions)
    ch = w.chat
    # C is on leave for two weeks, B covers. Everyone was visited when the pairings started (1 Feb).
    async with sessions() as s, s.begin():
        s.add(Leave(person_id=w.c, start_date=date(2026, 3, 9), end_date=date(2026, 3, 22), covered_by_id=w.b))
        s.add(Difficulty(idem_key="d1", reporter_id=w.a, team_id=w.team_id, household_id=w.hh["H1"],
                         category="housing", description="房屋漏雨，需要维修", created_at=local(2026, 3, 6, 10)))
    for code, cadre in (("H1", w.a), ("H2", w.a), ("H3", w.b), ("H4", w.c)):
        await add_visit(sessions, w.hh[code], cadre, date(2026, 2, 1))
    # H3 again on 20 Feb, so it is not overdue by 9 March.
    await add_visit(sessions, w.hh["H3"], w.b, date(2026, 2, 20))

    async def tick(at: datetime) -> list[str]:
        return (await run_tick(sessions, rules, catalogs, at)).ran

    # --- Monday 9 March, 08:00: planning reminder to A and B, not to C (on leave); morning overdue list.
    ran = await tick(local(2026, 3, 9, 8, 0))
    assert "vd.plan" in ran and "visit.cadre" in ran and "visit.leader" not in ran  # 08:30 not yet
    plan_chats = {r.chat_id for r in await outbox(sessions, "vd.plan")}
    assert plan_chats == {ch[w.a], ch[w.b]}
    cadre_overdue = await outbox(sessions, "visit.cadre")
    assert {r.chat_id for r in cadre_overdue} == {ch[w.a]}  # C is overdue too but on leave; H3 is fine
    a_msg = text(cadre_overdue[0])
    assert "张大山" in a_msg and "张小山" in a_msg and "超期 6 天" in a_msg  # due 3 March, overdue from the 4th
    buttons = [b["data"] for row in cadre_overdue[0].payload["markup"]["rows"] for b in row]
    assert buttons == [f"rm:visit:{w.hh['H1']}", f"rm:visit:{w.hh['H2']}"]

    # Same tick again, and a later one the same morning: nothing new for those rules.
    before = len(await outbox(sessions))
    assert await tick(local(2026, 3, 9, 8, 0)) == []
    ran = await tick(local(2026, 3, 9, 8, 31))
    assert set(ran) == {"visit.leader", "vd.shortfall", "digest"}
    after = await outbox(sessions)
    assert len([r for r in after if r.rule in ("vd.plan", "visit.cadre")]) == before
    leader_alert = await outbox(sessions, "visit.leader")
    assert len(leader_alert) == 1 and leader_alert[0].chat_id == ch[w.leader]
    la = text(leader_alert[0])
    assert "王建国" in la and "周平" in la and "休假中，由李红梅代管" in la and "刘老四" in la

    # --- The week: A checks in once, B twice. C is on leave.
    await add_checkin(sessions, w.a, date(2026, 3, 10))
    await add_checkin(sessions, w.b, date(2026, 3, 10))
    await add_checkin(sessions, w.b, date(2026, 3, 11))

    # Tuesday 10 March: spring opens. A and B get their lists; leader overdue alert unchanged: not resent.
    ran = await tick(local(2026, 3, 10, 9, 0))
    assert "season.open.spring" in ran and "visit.leader" in ran
    assert len(await outbox(sessions, "visit.leader")) == 1
    opened = {r.chat_id: text(r) for r in await outbox(sessions, "season.open.spring")}
    assert set(opened) == {ch[w.a], ch[w.b]}
    assert "张大山" in opened[ch[w.a]] and "陈秀英" in opened[ch[w.b]]

    # Wednesday 11 March: the difficulty (reported Friday 6th) is past 2 working days unacknowledged.
    await tick(local(2026, 3, 11, 9, 0))
    ack = await outbox(sessions, "diff.ack")
    assert [r.chat_id for r in ack] == [ch[w.leader]] and "房屋漏雨" in text(ack[0])

    # Thursday 12 March: nudge to A (1 day), not B (2 days), not C (on leave).
    await tick(local(2026, 3, 12, 9, 0))
    nudges = await outbox(sessions, "vd.nudge")
    assert [r.chat_id for r in nudges] == [ch[w.a]]
    assert "还差 1 天" in text(nudges[0])
    assert nudges[0].payload["markup"]["rows"][0][0]["data"] == "rm:checkin"

    # A visits H1 on 20 March (a routine visit: it counts for the window and for the cadence).
    await add_visit(sessions, w.hh["H1"], w.a, date(2026, 3, 20))

    # Monday 16 March 08:30: the leader's list of last week's shortfall names A (1) and C (on leave).
    await tick(local(2026, 3, 16, 8, 30))
    short = await outbox(sessions, "vd.shortfall")
    week11 = [r for r in short if "2026-W11" in r.dedup_key]
    assert len(week11) == 1 and week11[0].chat_id == ch[w.leader]
    st = text(week11[0])
    assert "王建国" in st and "1 天" in st and "周平" in st and "李红梅代管" in st
    assert "李红梅：" not in st  # B made the target

    # The leader's overdue alert is sent again only when the list changed (H1 visited on the 20th).
    await tick(local(2026, 3, 21, 9, 0))
    alerts = await outbox(sessions, "visit.leader")
    assert len(alerts) == 2 and "张大山" not in text(alerts[-1]) and "张小山" in text(alerts[-1])
    await tick(local(2026, 3, 22, 9, 0))
    assert len(await outbox(sessions, "visit.leader")) == 2

    # B visits H3 in April; H2 (A) and H4 (C) are never visited in the window.
    await add_visit(sessions, w.hh["H3"], w.b, date(2026, 4, 1))

    # Saturday 4 April, the middle of 10 March .. 30 April: the nudge lists only households still
    # missing. C is back from leave, so C is reminded too.
    await tick(local(2026, 4, 4, 9, 0))
    mid = {r.chat_id: text(r) for r in await outbox(sessions, "season.nudge.spring")}
    assert set(mid) == {ch[w.a], ch[w.c]}
    assert "张小山" in mid[ch[w.a]] and "张大山" not in mid[ch[w.a]] and "刘老四" in mid[ch[w.c]]
    # The difficulty (reported 6 March) is past 20 working days (3 April) undecided: escalated.
    decide = await outbox(sessions, "diff.decide")
    assert {r.chat_id for r in decide} == {ch[w.township], ch[w.leader]}
    async with sessions() as s:
        assert (await s.scalar(select(Difficulty.escalation_level))) == 1

    # Friday 1 May 08:30: the window closed yesterday; the leader gets every missed household + cadre.
    await tick(local(2026, 5, 1, 8, 30))
    close = await outbox(sessions, "season.close.spring")
    assert len(close) == 1 and close[0].chat_id == ch[w.leader]
    ct = text(close[0])
    assert "张小山" in ct and "王建国" in ct and "刘老四" in ct and "周平" in ct
    assert "张大山" not in ct and "陈秀英" not in ct
    assert "有 2 户没走访到" in ct

    # No dedup key was ever written twice.
    async with sessions() as s:
        dup = await s.scalar(select(func.count()).select_from(
            select(Outbox.dedup_key).group_by(Outbox.dedup_key).having(func.count() > 1).subquery()))
        assert dup == 0


async def test_quiet_hours_no_rules_run(sessions: Sessions, rules: Rules, catalogs: Catalogs) -> None:
    await seed_team(sessions)
    assert (await run_tick(sessions, rules, catalogs, local(2026, 3, 9, 22, 0))).ran == []
    assert (await run_tick(sessions, rules, catalogs, local(2026, 3, 9, 7, 0))).ran == []
    assert await outbox(sessions) == []


async def test_two_schedulers_same_tick(sched_url: str, rules: Rules, catalogs: Catalogs) -> None:
    """Two scheduler processes (separate engines) running the same tick write each message once."""
    e1, e2 = create_engine(sched_url), create_engine(sched_url)
    s1, s2 = session_factory(e1), session_factory(e2)
    try:
        w = await seed_team(s1)
        at = local(2026, 3, 9, 9, 0)  # Monday: plan, overdue (cadre + leader), digest, shortfall
        r1, r2 = await asyncio.gather(run_tick(s1, rules, catalogs, at), run_tick(s2, rules, catalogs, at))
        rows = await outbox(s1)
        keys = [r.dedup_key for r in rows]
        assert len(keys) == len(set(keys)) > 0
        assert r1.written + r2.written == len(rows)
        # Each intended message exactly once (no leave in this test: all three cadres get the plan).
        plan = [r.chat_id for r in rows if r.rule == "vd.plan"]
        assert sorted(plan) == sorted(w.chat[p] for p in (w.a, w.b, w.c))
        assert [r.chat_id for r in rows if r.rule == "visit.leader"] == [w.chat[w.leader]]
        # A third run a minute later adds nothing.
        r3 = await run_tick(s2, rules, catalogs, at + timedelta(minutes=1))
        assert r3.written == 0 and len(await outbox(s1)) == len(rows)
    finally:
        await e1.dispose()
        await e2.dispose()


async def test_seasonal_kind_option_and_hand_over(sessions: Sessions) -> None:
    """A routine visit counts for the window unless the county requires the seasonal kind; a new
    pairing (hand-over) gets a full cadence from its start date."""
    from bot.scheduler import due
    from bot.store.models import Pairing

    w = await seed_team(sessions)
    await add_visit(sessions, w.hh["H1"], w.a, date(2026, 3, 15), kind="routine")
    await add_visit(sessions, w.hh["H2"], w.a, date(2026, 3, 16), kind="spring")
    first, last = date(2026, 3, 10), date(2026, 4, 30)
    async with sessions() as s:
        any_kind = {r.household_code for r in await due.season_missing(s, first, last, last)}
        spring_only = {r.household_code for r in await due.season_missing(s, first, last, last, kind="spring")}
    assert any_kind == {"H3", "H4"}
    assert spring_only == {"H1", "H3", "H4"}

    # H4 is handed from C to B on 20 April; last visited never (pairing start 1 Feb for C).
    async with sessions() as s, s.begin():
        old = await s.scalar(select(Pairing).where(Pairing.household_id == w.hh["H4"]))
        assert old is not None
        old.end_date = date(2026, 4, 20)
        s.add(Pairing(cadre_id=w.b, household_id=w.hh["H4"], start_date=date(2026, 4, 20)))
    async with sessions() as s:
        may10 = {r.household_code: r for r in await due.overdue_households(s, date(2026, 5, 10), 30)}
        may21 = {r.household_code: r for r in await due.overdue_households(s, date(2026, 5, 21), 30)}
    assert "H4" not in may10  # B has 30 days from the hand-over
    assert may21["H4"].cadre_id == w.b and may21["H4"].days_overdue == 1
    assert may21["H1"].days_overdue == (date(2026, 5, 21) - date(2026, 4, 14)).days  # due 14 April


async def test_daily_tick_forgets_old_update_ids_and_stale_drafts(
    sessions: Sessions, rules: Rules, catalogs: Catalogs
) -> None:
    """The core records every update id (so a redelivered one does nothing twice) and keeps dialogs in the
    database; the daily retention in the tick forgets ids older than a week and dialogs untouched for
    longer than drafts are offered back, or both tables would only ever grow."""
    from bot.store.models import DialogState, ProcessedUpdate

    w = await seed_team(sessions)
    morning = local(2026, 3, 9, 8, 0)
    async with sessions() as s, s.begin():
        for days in (30, 8, 6, 0):
            s.add(ProcessedUpdate(channel="telegram", update_id=f"u{days}", at=morning - timedelta(days=days)))
        for name, days in (("visit", 9), ("problem", 2)):
            at = morning - timedelta(days=days)
            s.add(DialogState(account_id=w.account[w.a], dialog=name, nonce="n", step="s", data={"x": 1},
                              history=["a"], active=name == "problem", created_at=at, updated_at=at))
    assert "visit.cadre" in (await run_tick(sessions, rules, catalogs, morning, draft_keep_days=7)).ran
    async with sessions() as s:
        kept = sorted((await s.scalars(select(ProcessedUpdate.update_id))).all())
        dialogs = (await s.scalars(select(DialogState.dialog))).all()
    assert kept == ["u0", "u6"]
    assert dialogs == ["problem"]  # the 9-day-old draft went; the one from two days ago is still offered


async def test_holidays_and_make_up_workdays(sessions: Sessions, catalogs: Catalogs, tmp_path: object) -> None:
    """The county's calendar: on a holiday nobody is reminded, but a difficulty past its deadline still
    alerts; deadlines count working days, where a make-up Saturday (调休) counts and a holiday does not."""
    from pathlib import Path

    from bot.scheduler.rules import load_rules

    county = Path(str(tmp_path)) / "county.toml"
    county.write_text('[calendar]\nholidays = ["2026-10-01..2026-10-07"]\nworkdays = ["2026-10-10"]\n'
                      '[difficulties]\nholidays = ["2026-12-31"]\n', encoding="utf-8")
    rules = load_rules(county)
    cal = rules.calendar
    assert cal.is_holiday(date(2026, 10, 3)) and not cal.is_working_day(date(2026, 10, 5))  # a holiday Monday
    assert cal.is_working_day(date(2026, 10, 10))  # the make-up Saturday
    assert cal.is_holiday(date(2026, 12, 31))  # the older [difficulties] list still counts
    # Reported on Wednesday 30 September: two working days later is Friday 9 October, not 2 October.
    assert cal.add_working_days(date(2026, 9, 30), 2) == date(2026, 10, 9)
    assert cal.add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 10)  # Friday + 1 = the 调休 Saturday

    w = await seed_team(sessions)
    for code, cadre in (("H1", w.a), ("H2", w.a), ("H3", w.b), ("H4", w.c)):
        await add_visit(sessions, w.hh[code], cadre, date(2026, 7, 1))  # all long overdue by October
    async with sessions() as s, s.begin():
        s.add(Difficulty(idem_key="d-oct", reporter_id=w.a, team_id=w.team_id, household_id=w.hh["H1"],
                         category="water", description="水管冻裂", created_at=local(2026, 9, 24, 10)))
    holiday = await run_tick(sessions, rules, catalogs, local(2026, 10, 5, 10, 0))  # a holiday Monday
    # No plan, overdue list, digest or leader alert; late difficulties and villagers' cases yes.
    assert holiday.ran == ["diff", "cases"]
    assert [r.chat_id for r in await outbox(sessions, "diff.ack")] == [w.chat[w.leader]]
    assert await outbox(sessions, "visit.cadre") == [] and await outbox(sessions, "digest") == []
    after = await run_tick(sessions, rules, catalogs, local(2026, 10, 8, 10, 0))  # back at work
    assert "visit.cadre" in after.ran and await outbox(sessions, "visit.cadre")
