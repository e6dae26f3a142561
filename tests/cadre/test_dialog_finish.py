"""Issue 10 #14: a dialog that finishes is closed. One test per dialog: after it finishes, the next message
is handled as if no dialog were open (the policy parser answers free text; nothing goes to anyone else)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.core.bootstrap import App
from bot.core.types import Incoming, Reply, Result
from bot.store.models import Account, DialogState, Difficulty
from tests.cadre.conftest import count, log_visit_until_summary, rows
from tests.conftest import Chat, World, bind

QUESTION = "住院能报多少"


@pytest.fixture(autouse=True)
def moving_clock(app: App) -> Iterator[None]:
    """Time passes between updates, as it does in a chat (a frozen clock hid the bug: the step's
    updated_at did not change, so the stale row was not rewritten)."""
    handle = app.core.handle

    async def later(inc: Incoming) -> Result:
        app.core.clock.advance(seconds=20)  # type: ignore[attr-defined]
        return await handle(inc)

    app.core.handle = later  # type: ignore[method-assign]
    yield
    app.core.handle = handle  # type: ignore[method-assign]


async def _active_dialogs(app: App, chat: Chat) -> list[str]:
    async with app.core.sessions() as s:
        account = (await s.execute(select(Account).where(Account.external_id == chat.user_id))).scalar_one()
        found = await s.execute(
            select(DialogState.dialog).where(DialogState.account_id == account.id, DialogState.active.is_(True))
        )
        return list(found.scalars())


async def _next_message_is_free(app: App, chat: Chat) -> None:
    """No dialog row is active and free text reaches the policy parser, only for the speaker."""
    assert await _active_dialogs(app, chat) == []
    replies = await chat.send(QUESTION)
    assert replies and all(r.chat_id == chat.user_id for r in replies)
    assert "住院" in chat.last_text


async def test_visit_dialog_closes_after_save(app: App, world: World, cadre: Chat) -> None:
    await log_visit_until_summary(cadre)
    await cadre.press_text("保存")
    assert "已保存" in cadre.last_text
    await _next_message_is_free(app, cadre)
    await cadre.send("/visit")
    assert "草稿" not in cadre.last_text and "张大山" in str(cadre.replies[-1])


async def test_problem_dialog_closes_after_filing(app: App, world: World, cadre: Chat) -> None:
    for n in range(3):
        await cadre.send("/problem")
        assert "草稿" not in cadre.last_text and "接着填" not in cadre.last_text
        await cadre.send("全村")
        await cadre.press_text("饮水安全")
        await cadre.send(f"第{n + 1}件：水管冻裂")
        await cadre.press_text("紧急")
        await cadre.press_text("不发照片")
        assert "已记入问题台账" in cadre.last_text
    assert await count(app, Difficulty) == 3
    await _next_message_is_free(app, cadre)


async def test_checkin_dialog_closes_after_check_in(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/checkin")
    await cadre.location(25.0, 102.7)
    assert "本周已驻村1天" in cadre.last_text
    await _next_message_is_free(app, cadre)


async def test_resolve_dialog_closes_after_resolving(app: App, world: World, cadre: Chat, leader: Chat) -> None:
    await cadre.send("/problem")
    await cadre.send("全村")
    await cadre.press_text("饮水安全")
    await cadre.send("水管冻裂")
    await cadre.press_text("紧急")
    await cadre.press_text("不发照片")
    [d] = await rows(app, Difficulty)
    await leader.press(f"df:res:{d.id}")
    await leader.send("已换管")
    assert "已办结" in "".join(r.text or "" for r in leader.replies if isinstance(r, Reply))
    await _next_message_is_free(app, leader)
    [d] = await rows(app, Difficulty)
    assert d.resolution_note == "已换管"


async def test_policy_reply_dialog_closes_after_reply(app: App, world: World) -> None:
    villager = Chat(app, "602")
    await bind(app, villager, household_id=world.households["张大山"])  # paired with 王建国
    cadre = Chat(app, "603")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await villager.send("我家的猪生病了不吃食怎么办")
    replies = await villager.press_text("转给")
    [to_cadre] = [r for r in replies if r.chat_id == "603"]
    await cadre.press(to_cadre.markup.rows[0][0].data or "")  # type: ignore[union-attr]
    back = await cadre.send("请联系乡兽医站")
    assert [r for r in back if r.chat_id == "602"]
    # The cadre's next, unrelated message is not sent to the villager.
    await _next_message_is_free(app, cadre)


async def test_onboard_dialog_closes_after_binding_by_phone(app: App, world: World) -> None:
    villager = Chat(app, "604")
    await villager.send("/start")
    assert await _active_dialogs(app, villager) == ["onboard"]
    await villager.contact("13800000004")
    assert "陈秀英" in villager.last_text
    await _next_message_is_free(app, villager)


async def test_onboard_dialog_closes_after_code(app: App, world: World) -> None:
    from bot.services.onboarding import create_invite
    from bot.store.models import Person

    async with app.core.sessions() as s, s.begin():
        code = (await create_invite(s, app.core.clock.now(), person=await s.get(Person, world.cadre_ids[1]))).code
    chat = Chat(app, "605")
    await chat.send("/start")
    await chat.send(code)
    assert "李红梅" in "".join(r.text or "" for r in chat.replies if isinstance(r, Reply))
    await _next_message_is_free(app, chat)
