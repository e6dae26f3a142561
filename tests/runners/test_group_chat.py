"""Issue 10 #2 on both runners: a staff command in a group gets the private-chat notice and nothing else."""

from __future__ import annotations

from typing import Any

from bot.core.bootstrap import App
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.test_conversation import _invite

GROUP = -100123


async def test_households_in_group_answers_privately_only(runner: Any, api: FakeBotAPI, app: App, world: World) -> None:
    zh = app.core.catalogs.get("zh_CN")
    cadre = FakeUser(6300, "建国")
    api.inject_message(cadre, f"/start {await _invite(app, world.cadre_ids[0])}")
    await api.wait_for_sent(cadre.id)
    for text in ("/households", "/visit"):
        msg = api._message(cadre, text=text, entities=[{"type": "bot_command", "offset": 0, "length": len(text)}])
        msg["chat"] = {"id": GROUP, "type": "supergroup", "title": "石桥村群"}
        api.inject_update({"message": msg})
        reply = await api.wait_for_sent(GROUP)
        assert reply["text"] == zh("core.private_only")
    texts = [m.get("text", "") for m in api.sent_to(GROUP)]
    assert len(texts) == 2 and not any("张大山" in t for t in texts)
