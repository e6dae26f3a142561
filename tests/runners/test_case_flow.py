"""A villager's hardship, the cadre's reply and what comes after, on both Telegram runners over real HTTP to
the fake Bot API (the case flows were tested through the core only): the reply reaches the villager once,
and the cadre's next message goes nowhere near the villager."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.core.bootstrap import App
from bot.services.onboarding import create_invite
from bot.store.models import Case, Household, Person
from tests.cadre.conftest import rows
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser


async def _invite(app: App, person_id: int | None = None, household_id: int | None = None) -> str:
    async with app.core.sessions() as s, s.begin():
        person = await s.get(Person, person_id) if person_id else None
        household = await s.get(Household, household_id) if household_id else None
        return (await create_invite(s, app.core.clock.now(), person=person, household=household)).code


def _button(msg: dict[str, Any], label: str) -> str:
    rows_ = (msg.get("reply_markup") or {}).get("inline_keyboard", [])
    return next(b["callback_data"] for row in rows_ for b in row if label in b["text"])


async def test_hardship_reply_and_the_message_after(runner: Any, api: FakeBotAPI, app: App, world: World) -> None:
    zh = app.core.catalogs.get("zh_CN")
    villager = FakeUser(6001, "秀英", language_code="zh-hans")
    cadre = FakeUser(6002, "红梅", language_code="zh-hans")
    api.inject_message(villager, f"/start {await _invite(app, household_id=world.households['陈秀英'])}")
    await api.wait_for_sent(villager.id)
    api.inject_message(cadre, f"/start {await _invite(app, person_id=world.cadre_ids[1])}")
    await api.wait_for_sent(cadre.id)

    mark = len(api.sent)
    api.inject_message(villager, "我家老人住院了，押金交不起，怎么办")
    await api.wait_for_sent(villager.id)
    notice = await api.wait_for_sent(cadre.id, lambda m: "陈秀英" in (m.get("text") or ""), since=mark)
    [case] = await rows(app, Case)
    assert case.household_id == world.households["陈秀英"] and case.account_id is not None

    api.inject_callback(cadre, _button(notice, zh("case.btn_reply")), notice)
    ask = await api.wait_for_sent(cadre.id)
    assert ask["text"] == zh("case.ask_reply", number=case.id)
    mark = len(api.sent)
    api.inject_message(cadre, "明天上午我到您家，带上住院押金减免的表")
    done = await api.wait_for_sent(cadre.id)
    assert done["text"] == zh("case.reply_sent", number=case.id)
    told = await api.wait_for_sent(villager.id, lambda m: "住院押金减免" in (m.get("text") or ""), since=mark)
    assert "李红梅" in told["text"]

    # The dialog is over: the cadre's next message is the cadre's own, never another reply to the villager.
    mark = len(api.sent)
    api.inject_message(cadre, "明天上午我再打个电话")
    await api.wait_for_sent(cadre.id)
    await asyncio.sleep(0.3)  # anything wrongly addressed would have been sent with the cadre's answer
    assert not [m for m in api.sent[mark:] if str(m["chat"]["id"]) == "6001"]
    [case] = await rows(app, Case)
    assert "再打个电话" not in (case.reply_text or "")
    # The villager got the reply exactly once.
    assert sum("住院押金减免" in (m.get("text") or "") for m in api.sent_to(villager.id)) == 1
