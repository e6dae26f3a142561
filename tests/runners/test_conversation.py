"""The same scripted conversation on both Telegram runners, over real HTTP to the fake Bot API server."""

from __future__ import annotations

from typing import Any

from bot.core.bootstrap import App
from bot.services.menu import commands_for
from bot.services.onboarding import create_invite
from bot.store.enums import Role
from bot.store.models import Person
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser


async def _invite(app: App, person_id: int) -> str:
    async with app.core.sessions() as s, s.begin():
        return (await create_invite(s, app.core.clock.now(), person=await s.get(Person, person_id))).code


def _buttons(msg: dict[str, Any]) -> dict[str, str]:
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


async def test_scripted_conversation(runner: Any, api: FakeBotAPI, app: App, world: World) -> None:
    zh = app.core.catalogs.get("zh_CN")
    en = app.core.catalogs.get("en")
    cadre = FakeUser(5001, "建国", username="wjg")

    # Onboard with an invite code given as the /start argument.
    code = await _invite(app, world.cadre_ids[0])
    api.inject_message(cadre, f"/start {code}")
    welcome = await api.wait_for_sent(cadre.id)
    assert welcome["text"] == zh("start.bound_person", name="王建国", role=zh("role.cadre"))
    # The role's menu is set for this chat only.
    menu = await api.wait_for_request("setMyCommands", lambda r: r.params["scope"].get("chat_id") in (5001, "5001"))
    assert menu.params["scope"]["type"] == "chat"
    assert [c["command"] for c in menu.params["commands"]] == [c for c, _ in commands_for(Role.CADRE, zh)]

    # Open the menu.
    api.inject_message(cadre, "/help")
    helptext = await api.wait_for_sent(cadre.id)
    assert helptext["text"].startswith(zh("help.intro.cadre")) and "/visit" in helptext["text"]

    # Inline buttons: /lang, press English; the spinner is stopped and the menu follows the language.
    api.inject_message(cadre, "/lang")
    choose = await api.wait_for_sent(cadre.id, lambda m: "reply_markup" in m)
    data = _buttons(choose)[zh("lang.name.en")]
    assert data == "lang:en"
    api.inject_callback(cadre, data, choose)
    assert (await api.wait_for_sent(cadre.id))["text"] == en("lang.changed")
    await api.wait_for_request("answerCallbackQuery")
    english = await api.wait_for_request(
        "setMyCommands", lambda r: r.params["commands"][0]["description"] == en(f"menu.{r.params['commands'][0]['command']}")
    )
    assert english.params["scope"]["chat_id"] in (5001, "5001")

    # A second user starts the onboarding dialog (reply keyboard asking for the phone) and cancels it.
    stranger = FakeUser(5002, "路人", language_code="zh-hans")
    api.inject_message(stranger, "/start")
    ask = await api.wait_for_sent(stranger.id)
    assert ask["text"] == zh("start.ask_code")
    keyboard = ask["params"]["reply_markup"]["keyboard"]
    assert keyboard[0][0].get("request_contact") is True
    api.inject_message(stranger, "/cancel")
    cancelled = await api.wait_for_sent(stranger.id)
    assert cancelled["text"] == zh("core.cancelled", title=zh("start.title"))
    assert cancelled["params"]["reply_markup"] == {"remove_keyboard": True}

    # After cancelling, a code typed as text is not taken as a code anymore: no dialog is active.
    api.inject_message(stranger, "/cancel")
    assert (await api.wait_for_sent(stranger.id))["text"] == zh("core.nothing_to_cancel")
