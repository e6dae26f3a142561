"""Villagers' policy questions in the chat: answered, clarified, or declined and forwarded to the
paired cadre, whose reply goes back to the villager; every question is logged."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.bootstrap import App
from bot.core.types import Reply
from bot.store.models import PolicyQuestion
from tests.conftest import Chat, World, bind


async def _questions(app: App) -> list[PolicyQuestion]:
    async with app.core.sessions() as s:
        return list((await s.execute(select(PolicyQuestion).order_by(PolicyQuestion.id))).scalars())


async def test_free_text_from_unbound_user_is_answered(app: App, world: World) -> None:
    chat = Chat(app, "500")
    await chat.send("住院了能报销多少")
    assert "住院" in chat.last_text
    [q] = await _questions(app)
    assert q.topic == "medical.inpatient" and q.answered


async def test_short_answer_then_details_button(app: App, world: World) -> None:
    chat = Chat(app, "510")
    await chat.send("申请低保要带什么材料")
    first = chat.last_text
    assert "身份证" in first and len(first) <= 300
    await chat.press_text("详细说明")
    assert "民主评议" in chat.last_text and len(chat.last_text) > len(first)


async def test_chit_chat_is_answered_briefly_and_never_forwarded(app: App, world: World) -> None:
    chat = Chat(app, "511")
    replies = await chat.send("谢谢你")
    assert "不客气" in chat.last_text
    assert all(r.markup is None for r in replies if isinstance(r, Reply))  # no forward offer


async def test_a_question_declined_says_so_once(app: App, world: World) -> None:
    chat = Chat(app, "512")
    replies = [r for r in await chat.send("国家有什么新政策") if isinstance(r, Reply)]
    assert len(replies) == 1 and "不能确定" in (replies[0].text or "")


async def test_follow_up_keeps_context(app: App, world: World) -> None:
    chat = Chat(app, "501")
    await chat.send("住院能报多少")
    await chat.send("那大病呢")
    qs = await _questions(app)
    assert qs[-1].topic == "medical.serious_illness"
    # A follow-up that names no topic at all is understood only through the stored context.
    await chat.send("住院能报多少")
    await chat.send("县医院呢")
    qs = await _questions(app)
    assert (qs[-1].topic, qs[-1].answered) == ("medical.inpatient", True)


async def test_declined_question_forwarded_to_cadre_and_reply_returned(app: App, world: World) -> None:
    villager = Chat(app, "502")
    await bind(app, villager, household_id=world.households["张大山"])  # paired with 王建国
    cadre = Chat(app, "503")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await villager.send("那个政策今年还有吗")  # a policy question the parser cannot place
    assert "不能确定" in "".join(r.text or "" for r in villager.replies if isinstance(r, Reply))
    replies = await villager.press_text("转给")
    to_cadre = [r for r in replies if r.chat_id == "503"]
    assert to_cadre and "那个政策今年还有吗" in (to_cadre[0].text or "")
    reply_button = to_cadre[0].markup.rows[0][0].data  # type: ignore[union-attr]
    cadre.replies.extend(to_cadre)
    # Another cadre cannot answer it by pressing a forged button.
    other = Chat(app, "504")
    await bind(app, other, person_id=world.cadre_ids[1])
    await other.press(reply_button or "")
    assert "没有权限" in other.last_text
    await cadre.press(reply_button or "")
    back = await cadre.send("请联系乡兽医站，电话我晚上发您")
    to_villager = [r for r in back if r.chat_id == "502"]
    assert to_villager and "兽医站" in (to_villager[0].text or "") and "王建国" in (to_villager[0].text or "")
    [q] = [q for q in await _questions(app) if "那个政策" in q.text]
    assert q.topic == "none" and q.forwarded_to_id == world.cadre_ids[0] and q.reply_text


async def test_forged_question_id_refused(app: App, world: World) -> None:
    a = Chat(app, "505")
    await a.send("我家的猪生病了不吃食怎么办")
    b = Chat(app, "506")
    [q] = await _questions(app)
    await b.press(f"pq:fwd:{q.id}")
    assert "失效" in b.last_text
    await b.press("pq:topic:99999999999999999999:medical.inpatient")
    assert "失效" in b.last_text


async def test_too_long_question_is_refused_not_cut(app: App, world: World) -> None:
    chat = Chat(app, "507")
    await chat.send("住院" * 600)
    assert "太长" in chat.last_text
    assert await _questions(app) == []
