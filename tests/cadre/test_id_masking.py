"""ID numbers typed into free text are masked (last four kept) before they are stored anywhere: a
villager's question and the cadre's reply, a visit note (and its draft), a difficulty and its
resolution. Phone numbers are left alone."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.core.bootstrap import App
from bot.services.privacy import mask_ids
from bot.store.models import Case, DialogState, Difficulty, PolicyQuestion, Visit
from tests.cadre.conftest import rows
from tests.conftest import Chat, World, bind

ID = "110101199003071234"
ID_X = "11010119900307123X"
MASKED = "**************1234"


def test_mask_ids() -> None:
    cases = {
        f"身份证{ID}，电话13800138000": f"身份证{MASKED}，电话13800138000",
        f"{ID_X}号": "**************123X号",
        "1101 0119 9003 0712 3x": "**************123X",
        "110101 19900307 1234": MASKED,
        "１１０１０１１９９００３０７１２３４": MASKED,  # full-width digits
        "老证110101900307123": "老证***********7123",  # the old 15-digit kind
        f"ID{ID} 3口人": f"ID{MASKED} 3口人",
    }
    for text, masked in cases.items():
        assert mask_ids(text) == masked, text
    for text in (
        "手机13800138000",
        "手机 138 0013 8000",
        "13800138000 13900139000",  # two phones side by side are not an ID
        "530102001001000001",  # a village code + household number: no birth date in it
        "1101011990030712345",  # 19 digits: a bank card, not an ID
        "110101199013071234",  # month 13
        "",
        "普通的话",
    ):
        assert mask_ids(text) == text, text


async def _drafts(app: App) -> str:
    async with app.core.sessions() as s:
        return json.dumps([r.data for r in (await s.execute(select(DialogState))).scalars()], ensure_ascii=False)


async def test_visit_note_masked_in_draft_and_ledger(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/visit")
    await cadre.press_text("张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    await cadre.send(f"帮户主补办医保，身份证号{ID}，联系电话13800000001")
    assert ID not in await _drafts(app) and MASKED in await _drafts(app)
    await cadre.send(f"想给儿子{ID_X}办低保")
    await cadre.press_text("不拍照")
    await cadre.send("没有信号，跳过")
    await cadre.press_text("保存")
    [v] = await rows(app, Visit)
    assert v.done == f"帮户主补办医保，身份证号{MASKED}，联系电话13800000001"
    assert v.needs == "想给儿子**************123X办低保"


async def test_difficulty_and_resolution_masked(app: App, world: World, cadre: Chat) -> None:
    leader = Chat(app, "209", name="赵队长")
    await bind(app, leader, person_id=world.leader_id)
    await cadre.send("/problem")
    await cadre.send("刘老")
    await cadre.press_text("饮水安全")
    await cadre.send(f"户主{ID}家自来水管冻裂")
    await cadre.press_text("紧急")
    await cadre.press_text("不发照片")
    [d] = await rows(app, Difficulty)
    assert d.description == f"户主{MASKED}家自来水管冻裂"
    leader.replies.extend(r for r in cadre.replies if getattr(r, "chat_id", None) == "209")
    await leader.press_text("已解决")
    await leader.send(f"已为{ID}换管")
    [d] = await rows(app, Difficulty)
    assert d.resolution_note == f"已为{MASKED}换管"


async def test_policy_question_and_reply_masked(app: App, world: World) -> None:
    """An out-of-scope message passed on becomes a case: the case, its question log and the cadre's reply
    keep only the masked ID number; the phone number is kept whole."""
    villager = Chat(app, "502")
    await bind(app, villager, household_id=world.households["张大山"])
    cadre = Chat(app, "503")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await villager.send(f"我的身份证{ID}，我家的猪生病了不吃食怎么办，电话13800000001")
    replies = await villager.press_text("转给")
    to_cadre = [r for r in replies if r.chat_id == "503"]
    assert to_cadre and ID not in (to_cadre[0].text or "") and MASKED in (to_cadre[0].text or "")
    cadre.replies.extend(to_cadre)
    await cadre.press_text("回复")
    await cadre.send(f"请带{ID}去乡兽医站")
    [q] = await rows(app, PolicyQuestion)
    assert q.text == f"我的身份证{MASKED}，我家的猪生病了不吃食怎么办，电话13800000001"
    [case] = await rows(app, Case)
    assert case.text == q.text
    assert case.reply_text == f"请带{MASKED}去乡兽医站"
