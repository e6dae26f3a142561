"""The monitoring step machine: owners, order, scope, clocks and the closing rules (time travel)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.core.bootstrap import App
from bot.scheduler.rules import Rules, load_rules
from bot.services import monitoring as mon
from bot.store.enums import MonitorKind, MonitorSource, MonitorStep
from bot.store.models import AuditLog, Household, MonitorCase, MonitorEvent, Person, Village
from tests.conftest import World

LINE = Decimal("6000")  # a test value, not a policy figure


def rules_with_line(**over: object) -> Rules:
    r = load_rules()
    m = r.monitoring.model_copy(update={"income_lines": {"2026": LINE, "2027": LINE}, **over})
    return r.model_copy(update={"monitoring": m})


async def officers(app: App, world: World) -> tuple[int, int, int]:
    """A township and a county officer of the world's village, and a township officer elsewhere."""
    async with app.core.sessions() as s, s.begin():
        other = Village(code="V900", name="远村", township="别的镇", county="示例县")
        s.add(other)
        await s.flush()
        t = Person(name="孙乡镇", phone="13700000001", role="township", village_id=world.village_id)
        c = Person(name="钱县级", phone="13700000002", role="county", village_id=world.village_id)
        o = Person(name="周外镇", phone="13700000003", role="township", village_id=other.id)
        s.add_all([t, c, o])
        await s.flush()
        return t.id, c.id, o.id


def at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 2, 0, tzinfo=UTC)


SCREEN = mon.Screening(
    members=4, labour=2, income={"工资性": Decimal("12000"), "转移性": Decimal("2000")},
    expenses={"医疗": Decimal("6000")}, guarantees={"education": True, "medical": True, "housing": True, "water": True},
    consent=True, kind=MonitorKind.SUDDEN.value,
)


async def test_whole_path_owners_order_and_closing(app: App, world: World) -> None:
    rules = rules_with_line()
    tid, cid, oid = await officers(app, world)
    hh = world.households["张大山"]
    d0 = date(2026, 1, 5)  # a Monday
    async with app.core.sessions() as s, s.begin():
        cadre = await s.get(Person, world.cadre_ids[0])
        other_cadre = await s.get(Person, world.cadre_ids[1])
        leader = await s.get(Person, world.leader_id)
        town = await s.get(Person, tid)
        county = await s.get(Person, cid)
        outsider = await s.get(Person, oid)
        assert cadre and other_cadre and leader and town and county and outsider
        case = await mon.open_case(s, rules, at(d0), d0, village_id=world.village_id, household_id=hh,
                                   source=MonitorSource.SELF_REPORT, head_name="张大山", risks=["illness"],
                                   id_number="11010519491231002X", id_key="k")
        assert case.step == "accept" and case.identify_due == d0 + timedelta(days=15)
        assert case.step_due == date(2026, 1, 7)  # 2 working days
        assert case.id_masked == "*" * 14 + "002X" and case.id_hash and len(case.id_hash) == 64
        # Wrong role, wrong area, wrong step: refused and audited.
        with pytest.raises(mon.Refused) as e:
            await mon.approve(s, rules, case, cadre, at(d0), d0, step="accept")
        assert e.value.key == "mon.refused.role"
        with pytest.raises(mon.Refused) as e:
            await mon.approve(s, rules, case, outsider, at(d0), d0, step="accept")
        assert e.value.key == "mon.refused.scope"
        with pytest.raises(mon.Refused) as e:
            await mon.approve(s, rules, case, town, at(d0), d0, step="county")
        assert e.value.key == "mon.refused.order"
        audits = (await s.execute(select(func.count()).select_from(AuditLog).where(
            AuditLog.entity == "monitor_case"))).scalar_one()
        assert audits == 3
        assert await mon.approve(s, rules, case, town, at(d0), d0, step="accept") is MonitorStep.VERIFY
        assert case.step_due == date(2026, 1, 7)
        with pytest.raises(mon.Refused) as e:
            await mon.approve(s, rules, case, cadre, at(d0), d0, step="verify")
        assert e.value.key == "mon.refused.no_screening"
        with pytest.raises(mon.Refused) as e:  # not their household
            await mon.record_screening(s, rules, case, other_cadre, at(d0), d0, SCREEN)
        assert e.value.key == "mon.refused.scope"
        pc = await mon.record_screening(s, rules, case, cadre, at(d0), d0, SCREEN)
        assert pc.net == Decimal("2000.00") and pc.below is True and "÷ 4" in pc.working
        await mon.approve(s, rules, case, cadre, at(d0), d0, step="verify")
        await mon.approve(s, rules, case, county, at(d0), d0, step="compare", result="比对无异常")
        d1 = d0 + timedelta(days=1)
        await mon.approve(s, rules, case, leader, at(d1), d1, step="assess", result="村民代表会议通过")
        assert case.step == "publicize"
        with pytest.raises(mon.Refused) as e:
            await mon.approve(s, rules, case, leader, at(d1), d1 + timedelta(days=4), step="publicize")
        assert e.value.key == "mon.refused.publicity"
        d2 = d1 + timedelta(days=5)
        await mon.approve(s, rules, case, leader, at(d2), d2, step="publicize")
        await mon.approve(s, rules, case, town, at(d2), d2, step="township")
        await mon.approve(s, rules, case, county, at(d2), d2, step="county")
        assert case.identified_on == d2
        assert (await s.get(Household, hh)).status == "monitored"  # type: ignore[union-attr]
        await mon.approve(s, rules, case, leader, at(d2), d2, step="announce")
        with pytest.raises(mon.Refused) as e:
            await mon.approve(s, rules, case, cadre, at(d2), d2, step="measures")
        assert e.value.key == "mon.refused.no_measure"
        await mon.add_measure(s, case, cadre, at(d2), d2, topic="medical.assistance", note="申请医疗救助")
        await mon.approve(s, rules, case, cadre, at(d2), d2, step="measures")
        assert case.step == "follow_up" and case.step_due == d2 + timedelta(days=30)
        # Follow-ups: income above the line from March; closing refused until 6 months on every count.
        await mon.follow_up(s, rules, case, cadre, at(date(2026, 3, 1)), date(2026, 3, 1),
                            income_per_head=Decimal("7000"), expense_solved=True, guarantees_secured=True)
        with pytest.raises(mon.Refused) as e:
            await mon.request_close(s, rules, case, cadre, at(date(2026, 6, 1)), date(2026, 6, 1))
        assert e.value.key == "mon.refused.not_closable"
        assert set(e.value.args_["reasons"]) == {"mon.close.too_soon", "mon.close.income"}
        day = date(2026, 9, 1)
        await mon.request_close(s, rules, case, cadre, at(day), day)
        assert case.phase == "close" and case.step == "verify"
        for step, who in [("verify", cadre), ("compare", county), ("assess", leader)]:
            await mon.approve(s, rules, case, who, at(day), day, step=step)
        day2 = day + timedelta(days=5)
        for step, who in [("publicize", leader), ("township", town), ("county", county), ("announce", leader)]:
            await mon.approve(s, rules, case, who, at(day2), day2, step=step)
        assert case.step == "closed" and not case.open
        assert (await s.get(Household, hh)).status == "lifted"  # type: ignore[union-attr]
        events = await mon.history(s, case.id)
        assert [e.action for e in events][:3] == ["open", "approve", "screening"]
        assert all(e.at is not None for e in events) and len(events) >= 20
        with pytest.raises(mon.Refused) as e:
            await mon.approve(s, rules, case, leader, at(day2), day2, step="closed")
        assert e.value.key == "mon.refused.closed"


async def test_no_labour_not_closed_by_income_alone(app: App, world: World) -> None:
    rules = rules_with_line(close_monitored_months=0, close_income_months=0)
    async with app.core.sessions() as s, s.begin():
        cadre = await s.get(Person, world.cadre_ids[0])
        assert cadre
        d = date(2026, 2, 2)
        case = await mon.open_case(s, rules, at(d), d, village_id=world.village_id,
                                   household_id=world.households["刘老四"], source=MonitorSource.CADRE_CHECK)
        case.step, case.identified_on = "follow_up", d
        await mon.add_measure(s, case, cadre, at(d), d, topic="employment.support")
        await mon.follow_up(s, rules, case, cadre, at(d), d, income_per_head=Decimal("9000"), expense_solved=True,
                            guarantees_secured=True, labour=0)
        assert await mon.closing_problems(s, rules, case, d) == ["mon.close.no_labour"]
        await mon.add_measure(s, case, cadre, at(d), d, topic="welfare.dibao")
        assert await mon.closing_problems(s, rules, case, d) == []
        # Income below the line again resets the six-month clock.
        await mon.follow_up(s, rules, case, cadre, at(d), d, income_per_head=Decimal("100"), expense_solved=True,
                            guarantees_secured=True)
        assert case.income_above_since is None


async def test_no_income_line_means_no_closing_on_income(app: App, world: World) -> None:
    rules = load_rules()  # ships no line
    assert rules.monitoring.income_line(2026) is None
    async with app.core.sessions() as s, s.begin():
        d = date(2026, 2, 2)
        case = await mon.open_case(s, rules, at(d), d, village_id=world.village_id,
                                   household_id=world.households["刘老四"], source=MonitorSource.DEPARTMENT)
        assert case.step == "verify"
        assert "mon.close.no_line" in await mon.closing_problems(s, rules, case, d)
        assert mon.per_capita(SCREEN, None).below is None


async def test_send_back_and_reject(app: App, world: World) -> None:
    rules = rules_with_line()
    tid, _, _ = await officers(app, world)
    async with app.core.sessions() as s, s.begin():
        town = await s.get(Person, tid)
        assert town
        d = date(2026, 2, 2)
        case = await mon.open_case(s, rules, at(d), d, village_id=world.village_id,
                                   household_id=world.households["张小山"], source=MonitorSource.CADRE_CHECK)
        case.step = "township"
        with pytest.raises(mon.Refused) as e:
            await mon.send_back(s, rules, case, town, at(d), d, step="township", reason="  ")
        assert e.value.key == "mon.refused.reason"
        # A reason is stored like any typed text: an ID number in it is masked (chat and web alike).
        await mon.send_back(s, rules, case, town, at(d), d, step="township",
                            reason="收入核算有误，户主身份证 11010519491231002X 对不上")
        assert case.step == "verify"
        case.step = "township"
        await mon.reject(s, rules, case, town, at(d), d, step="township", reason="不符合条件")
        assert case.step == "rejected" and not case.open
        n = (await s.execute(select(func.count()).select_from(MonitorEvent).where(
            MonitorEvent.case_id == case.id))).scalar_one()
        assert n == 3
        assert (await s.get(MonitorCase, case.id)) is not None
        results = list((await s.execute(select(MonitorEvent.result).where(MonitorEvent.case_id == case.id))).scalars())
        assert "11010519491231002X" not in "".join(results) and any("002X" in r for r in results)


def test_identify_clock_in_working_days() -> None:
    r = load_rules()
    m = r.monitoring.model_copy(update={"identify_days": 20, "identify_working_days": True})
    # 2026-01-05 is a Monday: 20 working days later is Monday 2 Feb.
    assert m.identify_due(date(2026, 1, 5), r.calendar.is_working_day) == date(2026, 2, 2)


async def test_step_deadlines_never_pass_the_identification_clock(app: App, world: World) -> None:
    rules = rules_with_line()
    await officers(app, world)
    async with app.core.sessions() as s, s.begin():
        cadre = await s.get(Person, world.cadre_ids[0])
        assert cadre
        d0 = date(2026, 1, 5)
        case = await mon.open_case(s, rules, at(d0), d0, village_id=world.village_id,
                                   household_id=world.households["张大山"], source=MonitorSource.CADRE_CHECK)
        assert case.identify_due == date(2026, 1, 20)
        late = date(2026, 1, 19)
        await mon.record_screening(s, rules, case, cadre, at(late), late, SCREEN)
        await mon.approve(s, rules, case, cadre, at(late), late, step="verify")
        assert case.step == "compare" and case.step_due == date(2026, 1, 20)  # not 3 working days on
