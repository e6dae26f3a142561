"""Issue 10 #15 and #16: client data with non-ASCII digits is refused politely; control characters and
decomposed text are cleaned once at the edge (saves and exports on both databases)."""

from __future__ import annotations

import io
import unicodedata
from datetime import date

import openpyxl
import pytest

from bot.core.bootstrap import App
from bot.core.normalize import clean_text, normalize_incoming
from bot.core.router import parse_id, parse_number
from bot.core.types import Contact, FileRef, Incoming, User
from bot.io.export import export_workbook
from bot.store.models import Difficulty, Visit
from tests.cadre.conftest import rows
from tests.conftest import Chat, World

ERROR = "系统出了点问题"


@pytest.mark.parametrize("raw", ["²", "³", "１２", "١", "①", "+1", "1_0", " 1", "", "0" * 19])
def test_parse_id_accepts_ascii_digits_only(raw: str) -> None:
    assert parse_id(raw) is None
    assert parse_number(raw) is None


def test_parse_id_plain_digits() -> None:
    assert parse_id("42") == 42 and parse_id("0") is None and parse_number("0") == 0


async def test_non_ascii_digits_in_buttons_refused_politely(app: App, world: World, cadre: Chat, leader: Chat) -> None:
    await cadre.send("/problem")
    await cadre.send("全村")
    await cadre.press_text("饮水安全")
    await cadre.send("水管冻裂")
    await cadre.press_text("紧急")
    await cadre.press_text("不发照片")
    [d] = await rows(app, Difficulty)
    forged = [
        "hh:p:²", "hh:p:１", f"hh:c:{world.cadre_ids[0]}:²", "hh:o:²", "hh:o:１",
        "df:ack:²", f"df:to:{d.id}:²", "df:open:１", "pb:²", "pq:reply:²", "pq:fwd:³",
    ]
    for data in forged:
        chat = leader if data.startswith("df") else cadre
        before = len(chat.replies)
        await chat.press(data)
        texts = [getattr(r, "text", None) or "" for r in chat.replies[before:]]
        assert not any(ERROR in t for t in texts), (data, texts)
        assert any(("失效" in t or "没有权限" in t or "不是您" in t) for t in texts), (data, texts)
    await cadre.send("/visit")
    before = len(cadre.replies)
    for value in ("page:²", "hh:²", "page:１"):
        await cadre.press(f"d:{cadre.button('张大山').split(':')[1]}:{value}")
    assert not any(ERROR in (getattr(r, "text", None) or "") for r in cadre.replies[before:])
    [d] = await rows(app, Difficulty)
    assert d.status == "open"


def test_clean_text() -> None:
    assert clean_text("a\x00b\x07c\x0bd\ne\tf\r") == "abcd\ne\tf"
    decomposed = unicodedata.normalize("NFD", "Café 张")
    assert clean_text(decomposed) == "Café 张" and unicodedata.is_normalized("NFC", clean_text(decomposed))
    plain = "just ascii"
    assert clean_text(plain) is plain


def test_normalize_incoming_every_client_field() -> None:
    inc = Incoming(
        channel="telegram",
        user=User("1", "Jo\x00se\u0301"),
        chat_id="1",
        text="hi\x07",
        args="a\x0bb",
        callback_data="x:\x001",
        contact=Contact("139\x00", "1", "Ma\x1bry"),
        files=(FileRef("f", name="e\u0301\x00.xlsx"),),
    )
    out = normalize_incoming(inc)
    assert (out.text, out.args, out.callback_data) == ("hi", "ab", "x:1")
    assert out.user.name == "José" and out.contact == Contact("139", "1", "Mary")
    assert out.files[0].name == "é.xlsx"
    clean = Incoming(channel="telegram", user=User("1", "x"), chat_id="1", text="hello")
    assert normalize_incoming(clean) is clean


async def test_control_characters_in_visit_note_save_and_export(app: App, world: World, cadre: Chat) -> None:
    await cadre.send("/visit")
    await cadre.press_text("张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    await cadre.send("了解\x00务工\x07收入\x0b讲了\u0065\u0301政策\n第二行\t完")
    await cadre.send("想学\x1b养牛")
    await cadre.press_text("不拍照")
    await cadre.send("没有信号，跳过")
    await cadre.press_text("保存")
    assert "已保存" in cadre.last_text
    [visit] = await rows(app, Visit)
    assert visit.done == "了解务工收入讲了\u00e9政策\n第二行\t完" and visit.needs == "想学养牛"
    async with app.core.sessions() as s:
        data = await export_workbook(s, "visits", date(2026, 11, 1), date(2026, 11, 30), world.team_id)
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws is not None
    cells = [str(c.value) for row in ws.iter_rows(min_row=2) for c in row if c.value is not None]
    assert "了解务工收入讲了\u00e9政策\n第二行\t完" in cells
