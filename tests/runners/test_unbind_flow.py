"""Unbinding a stranger from a household on both Telegram runners over the fake Bot API: the household's
cadre presses the button in the household file, the account is told once, its next message reaches no
cadre; a forged press from another cadre changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.buttons import HOUSEHOLD_FILE, HOUSEHOLD_UNBIND
from bot.core.bootstrap import App
from bot.services.onboarding import create_invite
from bot.store.models import Account, Household, Person
from tests.cadre.conftest import rows
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser


async def _invite(app: App, person_id: int | None = None, household_id: int | None = None) -> str:
    async with app.core.sessions() as s, s.begin():
        person = await s.get(Person, person_id) if person_id else None
        household = await s.get(Household, household_id) if household_id else None
        return (await create_invite(s, app.core.clock.now(), person=person, household=household)).code


def _texts(api: FakeBotAPI, chat: int, since: int) -> list[str]:
    return [m.get("text") or "" for m in api.sent[since:] if str(m["chat"]["id"]) == str(chat)]


async def test_unbind_over_the_bot_api(runner: Any, api: FakeBotAPI, app: App, world: World) -> None:
    hid = world.households["陈秀英"]
    stranger, cadre, other = FakeUser(6201, "路人"), FakeUser(6202, "红梅"), FakeUser(6203, "建国")
    for user, kw in ((stranger, {"household_id": hid}), (cadre, {"person_id": world.cadre_ids[1]}),
                     (other, {"person_id": world.cadre_ids[0]})):
        api.inject_message(user, f"/start {await _invite(app, **kw)}")
        await api.wait_for_sent(user.id)
    [account] = await rows(app, Account, Account.external_id == "6201")

    api.inject_callback(cadre, HOUSEHOLD_FILE.pack(hid))
    card = await api.wait_for_sent(cadre.id, lambda m: "已绑定的聊天账号" in (m.get("text") or ""))
    buttons = {b["text"]: b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row}
    unbind = next(d for t, d in buttons.items() if "解绑" in t)
    assert unbind == HOUSEHOLD_UNBIND.pack(account.id)

    mark = len(api.sent)
    api.inject_callback(other, unbind)  # a forged press: not 王建国's household
    await api.wait_for_sent(other.id, lambda m: "不是您结对" in (m.get("text") or ""), since=mark)
    assert (await rows(app, Account, Account.id == account.id))[0].household_id == hid

    mark = len(api.sent)
    api.inject_callback(cadre, unbind, card)
    await api.wait_for_sent(cadre.id, lambda m: "已解绑" in (m.get("text") or ""), since=mark)
    await api.wait_for_sent(stranger.id, lambda m: "解除绑定" in (m.get("text") or ""), since=mark)
    assert (await rows(app, Account, Account.id == account.id))[0].household_id is None

    # The message after: the unbound account's hardship reaches no cadre.
    mark = len(api.sent)
    api.inject_message(stranger, "我家老人住院了，押金交不起，怎么办")
    await api.wait_for_sent(stranger.id, since=mark)
    await asyncio.sleep(0.3)
    assert not _texts(api, cadre.id, mark) and not _texts(api, other.id, mark)
    assert sum("解除绑定" in t for t in _texts(api, stranger.id, 0)) == 1
