"""One visit end to end: the real aiogram runner, over HTTP, against the fake Bot API server — two
photos fetched back through getFile and stored locally, and a shared location."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from bot.core.bootstrap import App
from bot.settings import Settings
from bot.store.models import Photo, Visit
from tests.cadre.conftest import rows
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import make_runner, telegram_settings

# One backend is enough here: the dialog itself runs on both in test_visit.py; this test is about the
# Telegram path (runner, HTTP, getFile).
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


def _button(msg: dict[str, Any], label: str) -> str:
    rows_ = (msg.get("params", {}).get("reply_markup") or msg.get("reply_markup") or {}).get(
        "inline_keyboard", []
    )
    for row in rows_:
        for b in row:
            if label in b["text"]:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {msg.get('text')!r}")


async def test_visit_with_two_photos_and_location_through_aiogram(
    app: App, world: World, settings: Settings, api: FakeBotAPI
) -> None:
    from bot.services.onboarding import create_invite
    from bot.store.models import Person

    async with app.core.sessions() as s, s.begin():
        code = (
            await create_invite(s, app.core.clock.now(), person=await s.get(Person, world.cadre_ids[0]))
        ).code
    runner = make_runner("aiogram", app, telegram_settings(settings, api))
    await runner.start()
    try:
        user = FakeUser(5301, "建国")

        async def said(fragment: str) -> dict[str, Any]:
            return await api.wait_for_sent(user.id, lambda m: fragment in (m.get("text") or ""))

        async def press(msg: dict[str, Any], label: str, then: str) -> dict[str, Any]:
            api.inject_callback(user, _button(msg, label), msg)
            return await said(then)

        api.inject_message(user, f"/start {code}")
        await said("王建国")
        api.inject_message(user, "/visit")
        msg = await said("走访的是哪一户")
        msg = await press(msg, "张大山", "是哪天")
        msg = await press(msg, "今天", "什么类型")
        msg = await press(msg, "日常走访", "做了什么")
        api.inject_message(user, "帮助申请<产业>补贴")
        msg = await said("需求")
        msg = await press(msg, "没有", "要拍照")
        blobs = [b"\xff\xd8\xff\xe0first-photo" * 40, b"\xff\xd8\xff\xe0second-photo" * 40]
        _, fid1 = api.inject_photo(user, blobs[0])
        await said("第1张")
        _, fid2 = api.inject_photo(user, blobs[1])
        msg = await said("第2张")
        location_ask = await press(msg, "完成", "最后一步")
        keyboard = location_ask["params"]["reply_markup"]["keyboard"]
        assert keyboard[0][0].get("request_location") is True
        api.inject_location(user, 25.0015, 102.7012)
        summary = await said("请核对")
        # Sent in HTML parse mode with the user's text escaped, so the client shows it as typed.
        assert "照片：2张" in summary["text"] and "&lt;产业&gt;" in summary["text"]
        assert summary["params"].get("parse_mode") == "HTML"
        await press(summary, "保存", "已保存")
    finally:
        await runner.stop()

    [visit] = await rows(app, Visit)
    assert (
        visit.location_status == "ok"
        and visit.lat == pytest.approx(25.0015)
        and visit.done == "帮助申请<产业>补贴"
    )
    photos = await rows(app, Photo, Photo.visit_id == visit.id)
    assert [p.file_id for p in photos] == [fid1, fid2]
    for p, blob in zip(photos, blobs, strict=True):
        assert p.sha256 == hashlib.sha256(blob).hexdigest()
        assert (Path(settings.media_dir) / str(p.local_path)).read_bytes() == blob
    assert sorted(r.params["file_id"] for r in api.calls("getFile")) == sorted([fid1, fid2])
