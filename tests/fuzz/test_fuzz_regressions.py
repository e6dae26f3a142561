"""Crashes the fuzzers found, each pinned by a plain test."""

from __future__ import annotations

import pytest

from bot.core.bootstrap import App
from bot.core.router import parse_id
from bot.io import validate as v
from tests.conftest import Chat, World, bind


def test_parse_id_takes_ascii_digits_only() -> None:
    assert parse_id("12") == 12
    for raw in ("²", "1²", "١٢", "１２", "", "0", "-1", "1" * 19):
        assert parse_id(raw) is None, raw


@pytest.mark.parametrize("raw", ["²10101199003071234", "1101011990030712²4", "１１０１０１１９９００３０７１２３４"])
def test_id_number_with_odd_digits_is_a_bad_value(raw: str) -> None:
    with pytest.raises(v.BadValue):
        v.id_number(raw)
    assert not v.id_checksum_ok(raw)


async def test_odd_digits_in_buttons_are_refused_not_crashed(app: App, world: World) -> None:
    cadre = Chat(app, "201", name="王建国")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    error = app.core.catalogs.get("zh_CN")("core.error")
    for data in ("hh:p:²", "hh:c:1:²", "hh:c:²:0", "hh:o:²", "pq:fwd:²", "pq:reply:²", "df:ack:²", "vc:ok:²"):
        replies = await cadre.press(data)
        assert all(r.text != error for r in replies), data


async def test_nul_in_free_text_is_not_stored(app: App, world: World) -> None:
    """PostgreSQL cannot store NUL in text or jsonb: a question or a visit note with one failed."""
    from bot.store.models import PolicyQuestion, Visit
    from tests.cadre.conftest import rows

    error = app.core.catalogs.get("zh_CN")("core.error")
    villager = Chat(app, "502")
    await bind(app, villager, household_id=world.villager_household)
    replies = await villager.send("住院\x00报销多少")
    assert all(r.text != error for r in replies)
    cadre = Chat(app, "201", name="王建国")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    await cadre.send("/visit")
    await cadre.press_text("张大山")
    await cadre.press_text("今天")
    await cadre.press_text("日常走访")
    replies = await cadre.send("送\x00种子")
    assert all(r.text != error for r in replies)
    await cadre.press_text("没有")
    await cadre.press_text("不拍照")
    await cadre.send("没有信号，跳过")
    await cadre.press_text("保存")
    [q] = await rows(app, PolicyQuestion)
    [v] = await rows(app, Visit)
    assert (q.text, v.done) == ("住院报销多少", "送种子")


@pytest.mark.parametrize("raw", ["十十十", "二二十", "十十"])
def test_chinese_numerals_that_spell_no_number_are_a_bad_value(raw: str) -> None:
    with pytest.raises(v.BadValue):
        v.integer(raw)
    assert v.integer("十二") == 12 and v.integer("三组") == 3
