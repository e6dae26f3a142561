"""One urgency enum, one label table: what the cadre pressed in the chat is what the ledger says."""

from __future__ import annotations

import io

import openpyxl

from bot.core.bootstrap import App
from bot.io.labels import urgency_label
from bot.store.enums import Urgency
from bot.store.models import Difficulty
from tests.cadre.conftest import rows
from tests.conftest import Chat, World


def test_chat_and_ledger_share_the_labels(app: App) -> None:
    zh = app.core.catalogs.get("zh_CN")
    labels = {u: urgency_label(u.value) for u in Urgency}
    assert labels == {u: zh(f"difficulty.urgency.{u.value}") for u in Urgency}
    assert len(set(labels.values())) == len(Urgency)  # three different words
    assert urgency_label("someday") == "someday"  # an unknown stored value is shown as it is


async def test_a_difficulty_pressed_as_jiaoji_is_exported_as_jiaoji(
    app: App, world: World, cadre: Chat, leader: Chat
) -> None:
    await cadre.send("/problem")
    await cadre.send("刘老")
    await cadre.press_text("饮水安全")
    await cadre.send("水管老化漏水")
    await cadre.press_text("较急")
    await cadre.press_text("不发照片")
    [d] = await rows(app, Difficulty)
    assert d.urgency == Urgency.NORMAL.value
    await leader.send("/export")
    await leader.press("ex:difficulties")
    replies = await leader.press("ex:difficulties:this")
    [doc] = [r.document for r in replies if r.document]
    ws = openpyxl.load_workbook(io.BytesIO(doc.data)).worksheets[0]
    header = [c.value for c in ws[1]]
    column = next(i for i, h in enumerate(header) if h and "紧急" in str(h))
    assert ws.cell(2, column + 1).value == "较急"
