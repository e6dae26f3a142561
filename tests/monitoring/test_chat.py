"""The monitoring workflow through the real core, as each person would use it, on both databases:
self-report → acceptance → home check → reviews → measures → follow-ups → risk closing; send back;
forged buttons; the next message after a dialog is handled as if no dialog were open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.buttons import MON_APPROVE, MON_CHECK, MON_OPEN
from bot.clock import FixedClock
from bot.core.bootstrap import App, build_core
from bot.core.types import Reply
from bot.settings import Settings
from bot.store.models import AuditLog, Household, MonitorCase, MonitorEvent, Person
from tests.conftest import Chat, World, bind, seed_world

RULES = """
[monitoring.income_lines]
"2026" = "6000"   # a test value, not a policy figure
"2027" = "6000"
"""


@pytest.fixture
async def mapp(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[App, FixedClock]]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    settings = Settings(database_url=db_url, media_dir=tmp_path / "media", telegram_token=None, rules_file=rules,
                        id_hash_key="test-key")
    clock = FixedClock(datetime(2026, 1, 5, 10, 0))  # a Monday
    app = build_core(settings, clock)
    yield app, clock
    await app.close()


class Post(Chat):
    """A chat that also hands what its updates sent to other people to their chats (notices)."""

    registry: dict[str, Chat] | None = None

    async def _go(self, **kw: Any) -> list[Reply]:
        before = len(self.replies)
        out = await super()._go(**kw)
        for a in self.replies[before:]:
            if isinstance(a, Reply) and a.chat_id != self.user_id and self.registry and a.chat_id in self.registry:
                self.registry[a.chat_id].replies.append(a)
        return out


async def people(app: App, world: World) -> dict[str, Chat]:
    async with app.core.sessions() as s, s.begin():
        t = Person(name="孙乡镇", phone="13700000001", role="township", village_id=world.village_id)
        c = Person(name="钱县级", phone="13700000002", role="county", village_id=world.village_id)
        s.add_all([t, c])
        await s.flush()
        tid, cid = t.id, c.id
    chats: dict[str, Chat] = {n: Post(app, uid) for n, uid in
             [("villager", "501"), ("cadre", "502"), ("leader", "503"), ("town", "504"), ("county", "505"),
              ("other", "506")]}
    registry = {ch.user_id: ch for ch in chats.values()}
    for ch in chats.values():
        ch.registry = registry  # type: ignore[attr-defined]
    await bind(app, chats["villager"], household_id=world.villager_household)
    await bind(app, chats["cadre"], person_id=world.cadre_ids[1])  # 李红梅: paired with 陈秀英
    await bind(app, chats["other"], person_id=world.cadre_ids[0])
    await bind(app, chats["leader"], person_id=world.leader_id)
    await bind(app, chats["town"], person_id=tid)
    await bind(app, chats["county"], person_id=cid)
    return chats


def recent(chat: Chat, n: int = 3) -> str:
    texts = [a.text for a in chat.replies if isinstance(a, Reply) and a.chat_id == chat.user_id and a.text]
    return "\n".join(texts[-n:])


async def approve(chat: Chat, label: str) -> None:
    await chat.press_text(label)
    assert "已办理" in chat.last_text, chat.last_text


async def the_case(app: App) -> MonitorCase:
    async with app.core.sessions() as s:
        return (await s.execute(select(MonitorCase).order_by(MonitorCase.id.desc()))).scalars().first()  # type: ignore[return-value]


async def self_report(villager: Chat) -> None:
    await villager.send("/hardship")
    assert "户主姓名" in villager.last_text
    await villager.press_text("陈秀英")
    await villager.press_text("13800000004")
    await villager.send("11010519491231002X")
    await villager.press_text("因病")
    await villager.send("老伴住院花了八万，报销后还欠四万")
    await villager.press_text("不拍照")
    assert "已收到您的申报" in villager.last_text


async def screening(cadre: Chat) -> None:
    await cadre.press_text("填写入户核实表")
    await cadre.send("4")
    await cadre.send("abc")
    assert "请输入 0 到 4" in recent(cadre)  # numbers validated, nothing lost
    await cadre.send("2")
    for amount in ["12000", "0", "0", "2000", "6000", "0", "0"]:
        await cadre.send(amount)
    for _ in range(4):
        await cadre.press_text("已保障")
    await cadre.press_text("突发严重困难户")
    await cadre.press_text("已签承诺授权书")
    assert "(12000 + 0 + 0 + 2000 − (6000 + 0 + 0)) ÷ 4 = 2000.00" in cadre.last_text
    assert "低于监测收入线 6000" in cadre.last_text
    await cadre.press_text("保存")
    assert "入户核实表已保存" in cadre.last_text


async def test_self_report_to_risk_closing(mapp: tuple[App, FixedClock]) -> None:
    app, clock = mapp
    world = await seed_world(app)
    c = await people(app, world)
    await self_report(c["villager"])
    # The next message after the dialog is handled as if no dialog were open (a policy question here).
    await c["villager"].send("/help")
    assert "户主姓名" not in c["villager"].last_text
    town = c["town"]
    assert "等您办理" in town.last_text  # the township was told at once, with the buttons
    case = await the_case(app)
    assert case.step == "accept" and case.id_masked == "*" * 14 + "002X" and case.id_hash
    assert "11010519491231002X" not in str(case.screening) + case.description
    # A cadre pressing the township's button: refused and audited.
    await c["cadre"].press(MON_APPROVE.pack(case.id, "accept"))
    assert "不由您办理" in c["cadre"].toasts()[-1]
    await approve(town, "受理")
    assert "已受理" in c["villager"].last_text
    cadre = c["cadre"]
    assert "等您办理" in cadre.last_text
    # Another cadre (not paired with the household) cannot do the home check.
    await c["other"].press(MON_APPROVE.pack(case.id, "verify"))
    assert "不在您的辖区" in c["other"].toasts()[-1]
    await screening(cadre)
    await approve(cadre, "提交核实结果")
    await approve(c["county"], "信息比对完成")
    await approve(c["leader"], "民主评议通过")
    await c["leader"].press_text("公示页")
    page = [a for a in c["leader"].replies if isinstance(a, Reply) and a.photo is not None][-1]
    assert page.photo is not None and page.photo.data and page.photo.data[:4] == b"\x89PNG"
    await c["leader"].press_text("公示期满无异议")
    assert "公示期还没满" in c["leader"].last_text
    clock.advance(days=5)
    await approve(c["leader"], "公示期满无异议")
    await approve(town, "乡镇审核通过")
    await approve(c["county"], "县级审批通过")
    assert "已纳入防返贫监测" in c["villager"].last_text
    await approve(c["leader"], "结果已公告")
    await cadre.press_text("添加帮扶措施")
    await cadre.press_text("医疗救助")
    assert "已添加帮扶措施" in cadre.last_text
    await approve(cadre, "措施已落实")
    # The household file shows the status and the measure.
    await cadre.press(f"hh:o:{world.villager_household}")
    assert "监测帮扶中" in cadre.last_text and "医疗救助" in cadre.last_text
    # Follow-up a month on: income above the line; closing refused with the reasons said.
    clock.advance(days=30)
    await cadre.press_text("记录本月回访")
    for text in ["7000"]:
        await cadre.send(text)
    await cadre.press_text("是")
    await cadre.press_text("是")
    await cadre.send("2")
    assert "回访已记录" in cadre.last_text
    await cadre.press_text("申请风险消除")
    assert "现在还不能消除风险" in cadre.last_text and "纳入监测还不满" in cadre.last_text
    clock.advance(days=185)
    await cadre.press_text("申请风险消除")
    assert "已申请风险消除" in cadre.last_text
    await approve(cadre, "提交核实结果")
    await approve(c["county"], "信息比对完成")
    await approve(c["leader"], "民主评议通过")
    clock.advance(days=5)
    await approve(c["leader"], "公示期满无异议")
    await approve(town, "乡镇审核通过")
    await approve(c["county"], "县级审批通过")
    await approve(c["leader"], "结果已公告")
    assert "风险已消除" in c["villager"].last_text
    case = await the_case(app)
    async with app.core.sessions() as s:
        assert not case.open and case.step == "closed"
        hh = await s.get(Household, world.villager_household)
        assert hh is not None and hh.status == "lifted"
        n = (await s.execute(select(func.count()).select_from(MonitorEvent).where(
            MonitorEvent.case_id == case.id))).scalar_one()
        assert n >= 20
        audits = (await s.execute(select(AuditLog.action).where(AuditLog.entity == "monitor_case"))).scalars().all()
        assert "monitor.refused_role" in audits and "monitor.refused_scope" in audits


async def test_send_back_and_forged_buttons(mapp: tuple[App, FixedClock]) -> None:
    app, _ = mapp
    world = await seed_world(app)
    c = await people(app, world)
    cadre = c["cadre"]
    await cadre.press(MON_CHECK.pack(world.villager_household))
    assert "已发起干部排查" in cadre.last_text
    await cadre.press(MON_CHECK.pack(world.households["张大山"]))  # not theirs
    assert "households" in str(cadre.toasts()) or cadre.toasts()[-1]
    await screening(cadre)
    await approve(cadre, "提交核实结果")
    county = c["county"]
    await county.press_text("退回重新核实")
    await county.send("收入项漏填了务工收入")
    assert "已退回重新核实" in county.last_text
    case = await the_case(app)
    assert case.step == "verify"
    # The cadre is told, with the reason in the history; a stale county button is refused as out of order.
    await county.press(MON_APPROVE.pack(case.id, "compare"))
    assert "按钮已过期" in county.toasts()[-1]
    await county.press("mn:ok:99999:compare")
    await county.press("mn:ok:abc:compare")
    await county.press(MON_OPEN.pack(case.id))
    assert "收入项漏填了务工收入" in county.last_text
    # After the reason dialog finished, the next message is handled as if no dialog were open.
    await county.send("/monitor")
    assert "进行中的监测案件" in county.last_text
    async with app.core.sessions() as s:
        actions = (await s.execute(select(AuditLog.action).where(AuditLog.entity == "monitor_case"))).scalars().all()
        assert "monitor.out_of_order" in actions and "monitor.missing_case" in actions


async def test_hardship_message_offers_the_self_report(mapp: tuple[App, FixedClock]) -> None:
    app, _ = mapp
    world = await seed_world(app)
    villager = Chat(app, "801")
    await bind(app, villager, household_id=world.villager_household)
    await villager.send("我爸住院报完还欠五万，家里实在拿不出来了")
    assert "申报防返贫监测" in str(villager.replies[-1])
    await villager.press_text("申报防返贫监测")
    assert "户主姓名" in villager.last_text
