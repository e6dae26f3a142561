"""A villager's 防返贫 self-report and the township's acceptance on both Telegram runners over real HTTP to the
fake Bot API (the monitoring flows were tested through the core only), and what the next message does."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot.core.bootstrap import App
from bot.services.onboarding import create_invite
from bot.store.models import Household, MonitorCase, Person
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser


async def _invite(app: App, person_id: int | None = None, household_id: int | None = None) -> str:
    async with app.core.sessions() as s, s.begin():
        person = await s.get(Person, person_id) if person_id else None
        household = await s.get(Household, household_id) if household_id else None
        return (await create_invite(s, app.core.clock.now(), person=person, household=household)).code


def _buttons(msg: dict[str, Any]) -> dict[str, str]:
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


class Talk:
    """One Telegram user's side: send, press the newest button with a label, read what came back."""

    def __init__(self, api: FakeBotAPI, user: FakeUser) -> None:
        self.api, self.user = api, user

    async def send(self, text: str, expect: str) -> dict[str, Any]:
        mark = len(self.api.sent)
        self.api.inject_message(self.user, text)
        return await self.api.wait_for_sent(self.user.id, lambda m: expect in (m.get("text") or ""), since=mark)

    async def press(self, label: str, expect: str) -> dict[str, Any]:
        msg = next(m for m in reversed(self.api.sent_to(self.user.id))
                   if any(label in t for t in _buttons(m)))
        data = next(d for t, d in _buttons(msg).items() if label in t)
        mark = len(self.api.sent)
        self.api.inject_callback(self.user, data, msg)
        return await self.api.wait_for_sent(self.user.id, lambda m: expect in (m.get("text") or ""), since=mark)


async def test_self_report_accepted_and_the_message_after(runner: Any, api: FakeBotAPI, app: App,
                                                         world: World) -> None:
    async with app.core.sessions() as s, s.begin():
        town = Person(name="孙乡镇", phone="13700000001", role="township", village_id=world.village_id)
        s.add(town)
        await s.flush()
        town_id = town.id
    villager = Talk(api, FakeUser(6101, "秀英", language_code="zh-hans"))
    township = Talk(api, FakeUser(6102, "孙乡镇", language_code="zh-hans"))
    await villager.send(f"/start {await _invite(app, household_id=world.villager_household)}", "陈秀英")
    await township.send(f"/start {await _invite(app, person_id=town_id)}", "孙乡镇")

    await villager.send("/hardship", "户主姓名")
    await villager.press("陈秀英", "")
    await villager.press("13800000004", "")
    await villager.send("11010519491231002X", "")
    await villager.press("因病", "")
    await villager.send("老伴住院花了八万，报销后还欠四万", "")
    mark = len(api.sent)
    await villager.press("不拍照", "已收到您的申报")
    told = await api.wait_for_sent(6102, lambda m: "等您办理" in (m.get("text") or ""), since=mark)
    async with app.core.sessions() as s:
        case = (await s.execute(select(MonitorCase))).scalar_one()
    assert case.step == "accept" and "11010519491231002X" not in case.description
    assert "11010519491231002X" not in str(told)  # the ID number never leaves masked

    # The dialog is over: the villager's next message is not taken as a step of it.
    after = await villager.send("/help", "")
    assert "户主姓名" not in after["text"] and "拍照" not in after["text"]

    mark = len(api.sent)
    await township.press("受理", "已办理")
    await api.wait_for_sent(6101, lambda m: "已受理" in (m.get("text") or ""), since=mark)
    async with app.core.sessions() as s:
        case = (await s.execute(select(MonitorCase))).scalar_one()
    assert case.step == "verify"
    # Pressed again (a double tap, a slow network): nothing happens twice.
    before = len([m for m in api.sent_to(6101) if "已受理" in (m.get("text") or "")])
    await township.press("受理", "")
    await asyncio.sleep(0.3)  # a second notice would be sent with the township's answer
    assert len([m for m in api.sent_to(6101) if "已受理" in (m.get("text") or "")]) == before
