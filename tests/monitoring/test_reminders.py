"""Monitoring reminders through the scheduler tick (time travel): step due, overdue to the owner, then
escalated to the next level (county working days), monthly list to leaders, weekly summary to township
and county — every message in the outbox once (dedup keys)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from bot.core.bootstrap import App
from bot.scheduler.rules import load_rules
from bot.scheduler.tick import run_tick
from bot.services import monitoring as mon
from bot.store.enums import MonitorSource
from bot.store.models import MonitorCase, Outbox, Person
from tests.conftest import Chat, World, bind


def local(y: int, m: int, d: int, hh: int = 9, mm: int = 30) -> datetime:
    return datetime(y, m, d, hh - 8, mm, tzinfo=UTC)  # Beijing time


async def rows(app: App) -> list[Outbox]:
    async with app.core.sessions() as s:
        return list((await s.execute(select(Outbox).order_by(Outbox.id))).scalars())


async def test_due_overdue_escalation_monthly_weekly(app: App, world: World) -> None:
    rules = load_rules()
    async with app.core.sessions() as s, s.begin():
        town = Person(name="孙乡镇", phone="13700000001", role="township", village_id=world.village_id)
        county = Person(name="钱县级", phone="13700000002", role="county", village_id=world.village_id)
        s.add_all([town, county])
        await s.flush()
        tid, cid = town.id, county.id
        d0 = date(2026, 12, 1)  # a Tuesday
        case = await mon.open_case(s, rules, local(2026, 12, 1), d0, village_id=world.village_id,
                                   household_id=world.households["张大山"], source=MonitorSource.CADRE_CHECK)
        case_id = case.id
        assert case.step_due == date(2026, 12, 3)  # verify: 2 working days
    chats = {n: Chat(app, u) for n, u in [("cadre", "601"), ("leader", "602"), ("town", "603"), ("county", "604")]}
    await bind(app, chats["cadre"], person_id=world.cadre_ids[0])
    await bind(app, chats["leader"], person_id=world.leader_id)
    await bind(app, chats["town"], person_id=tid)
    await bind(app, chats["county"], person_id=cid)

    def to(chat: str, rs: list[Outbox], rule: str) -> list[Outbox]:
        return [r for r in rs if r.chat_id == chats[chat].user_id and r.rule == rule]

    # Wednesday: not due yet.
    await run_tick(app.core.sessions, rules, app.core.catalogs, local(2026, 12, 2))
    assert not [r for r in await rows(app) if r.rule == "mon.due"]
    # Thursday: due today, to the paired cadre only.
    await run_tick(app.core.sessions, rules, app.core.catalogs, local(2026, 12, 3))
    rs = await rows(app)
    assert len(to("cadre", rs, "mon.due")) == 1 and "今天到期" in str(to("cadre", rs, "mon.due")[0].payload)
    assert not to("leader", rs, "mon.due")
    # A second tick the same day writes nothing twice.
    await run_tick(app.core.sessions, rules, app.core.catalogs, local(2026, 12, 3, 15))
    assert len(to("cadre", await rows(app), "mon.due")) == 1
    # Friday: one working day late — still the cadre only.
    await run_tick(app.core.sessions, rules, app.core.catalogs, local(2026, 12, 4))
    rs = await rows(app)
    assert len(to("cadre", rs, "mon.due")) == 2 and not to("leader", rs, "mon.due")
    # Monday 7th: two working days late (the weekend does not count) — the leader too, level raised.
    await run_tick(app.core.sessions, rules, app.core.catalogs, local(2026, 12, 7))
    rs = await rows(app)
    assert len(to("leader", rs, "mon.due")) == 1 and "督办" in str(to("leader", rs, "mon.due")[0].payload)
    assert not to("town", rs, "mon.due")
    async with app.core.sessions() as s:
        assert (await s.get(MonitorCase, case_id)).escalation_level == 1  # type: ignore[union-attr]
    # Monday 7th is also the weekly summary day: township and county get it.
    assert to("town", rs, "mon.week") and to("county", rs, "mon.week")
    # Wednesday 9th: four working days late — the township as well.
    await run_tick(app.core.sessions, rules, app.core.catalogs, local(2026, 12, 9))
    rs = await rows(app)
    assert to("town", rs, "mon.due")
    async with app.core.sessions() as s:
        assert (await s.get(MonitorCase, case_id)).escalation_level == 2  # type: ignore[union-attr]


async def test_monthly_list_and_holiday_calendar(app: App, world: World) -> None:
    rules = load_rules()
    cal = rules.calendar.model_copy(update={"holidays": (date(2027, 1, 4), date(2027, 1, 5))})
    rules = rules.model_copy(update={"calendar": cal})
    async with app.core.sessions() as s, s.begin():
        d0 = date(2026, 12, 31)
        case = await mon.open_case(s, rules, local(2026, 12, 31), d0, village_id=world.village_id,
                                   household_id=world.households["张大山"], source=MonitorSource.CADRE_CHECK)
        # 2027-01-01 is a Friday (a working day here); Mon 4 and Tue 5 are holidays: due Wed 6th.
        assert case.step_due == date(2027, 1, 6)
        case.step_due = date(2026, 12, 20)  # long overdue
    leader = Chat(app, "701")
    await bind(app, leader, person_id=world.leader_id)
    await run_tick(app.core.sessions, rules, app.core.catalogs, local(2027, 1, 1))
    rs = [r for r in await rows(app) if r.rule == "mon.month"]
    assert len(rs) == 1 and "2027-01" in str(rs[0].payload) and "超期 1" in str(rs[0].payload)
