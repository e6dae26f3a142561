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
