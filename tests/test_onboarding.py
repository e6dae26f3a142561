"""Onboarding: invite codes (as /start argument or typed), shared phone contact, roles and menus."""

from __future__ import annotations

from bot.core.bootstrap import App
from bot.core.types import SetCommands
from tests.conftest import Chat, World, bind


async def test_invite_code_as_start_argument_binds_cadre(app: App, world: World) -> None:
    chat = Chat(app, "100")
    await bind(app, chat, person_id=world.cadre_ids[0])
    assert "王建国" in chat.replies[0].text  # type: ignore[union-attr]
    menus = [a for a in chat.replies if isinstance(a, SetCommands)]
    assert menus and "visit" in [c for c, _ in menus[-1].commands]


async def test_code_typed_after_bare_start(app: App, world: World) -> None:
    from bot.services.onboarding import create_invite
    from bot.store.models import Person

    async with app.core.sessions() as s, s.begin():
        code = (await create_invite(s, app.core.clock.now(), person=await s.get(Person, world.leader_id))).code
    chat = Chat(app, "101")
    await chat.send("/start")
    assert "邀请码" in chat.last_text
    await chat.send("WRONG123")
    assert "不对" in chat.replies[-2].text or "不对" in chat.last_text  # type: ignore[union-attr]
    await chat.send(code.lower())
    assert "赵队长" in "".join(r.text or "" for r in chat.replies if hasattr(r, "text"))
    # The code is one-time: a second account cannot reuse it.
    other = Chat(app, "102")
    await other.send(f"/start {code}")
    assert "不对" in other.replies[0].text  # type: ignore[union-attr]


async def test_shared_phone_binds_person_or_household(app: App, world: World) -> None:
    cadre = Chat(app, "103")
    await cadre.send("/start")
    await cadre.contact("+86 139 0000 0002")  # staff bind by invite code only (issue 10 #1)
    assert "请用邀请码绑定" in cadre.last_text and "李红梅" not in cadre.last_text
    villager = Chat(app, "104")
    await villager.send("/start")
    await villager.contact("13800000004")
    assert "陈秀英" in villager.last_text
    stranger = Chat(app, "105")
    await stranger.send("/start")
    await stranger.contact("13800000004", own=False)
    assert "自己的手机号" in stranger.last_text


async def test_unbound_user_is_villager_without_household(app: App, world: World) -> None:
    chat = Chat(app, "106")
    await chat.send("/visit")
    assert chat.last_text  # some polite answer, never a crash
    menus = [a for a in chat.replies if isinstance(a, SetCommands)]
    assert menus and "visit" not in [c for c, _ in menus[-1].commands]


async def test_language_switch(app: App, world: World) -> None:
    chat = Chat(app, "107")
    await chat.send("/lang")
    await chat.press("lang:en")
    assert chat.last_text == "Switched to English."
    await chat.send("/help")
    assert "Commands" in chat.last_text or "commands" in chat.last_text
    await chat.press("lang:xx")  # forged payload
    assert chat.last_text.startswith("Bangfu")  # unchanged: no reply to a forged language
