"""Notices (bot/notices/): what one feature tells other people is rendered per recipient, in the
recipient's language, and goes out through the one `Ctx.deliver` path."""

from __future__ import annotations

from sqlalchemy import update

from bot.core.bootstrap import App
from bot.core.types import InlineKeyboard, Reply
from bot.store.models import Account
from tests.cadre.conftest import to
from tests.conftest import Chat, World


async def _speaks(app: App, chat_id: str, lang: str) -> None:
    async with app.core.sessions() as s, s.begin():
        await s.execute(update(Account).where(Account.chat_id == chat_id).values(language=lang))


async def test_a_difficulty_reaches_an_english_leader_in_english(
    app: App, world: World, cadre: Chat, leader: Chat
) -> None:
    await _speaks(app, "209", "en")
    await cadre.send("/problem")
    await cadre.send("全村")
    await cadre.press_text("饮水安全")
    await cadre.send("自来水管冻裂")
    await cadre.press_text("紧急")
    await cadre.press_text("不发照片")
    assert "已记入问题台账" in cadre.last_text  # the reporter's own reply: their language
    [alert] = [a for a in cadre.replies if isinstance(a, Reply) and a.chat_id == "209"]
    assert "New difficulty reported" in (alert.text or "") and "自来水管冻裂" in (alert.text or "")
    assert isinstance(alert.markup, InlineKeyboard)
    labels = [b.text for row in alert.markup.rows for b in row]
    assert any("Acknowledge" in label for label in labels)
    # The leader acts in English; the status change reaches the cadre in Chinese.
    leader.replies.append(alert)
    await leader.press_text("Acknowledge")
    told = "".join(to(leader, "201"))
    assert "已受理" in told and "Acknowledged" not in told
