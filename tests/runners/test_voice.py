"""A villager's voice message over the real runners (aiogram and python-telegram-bot) against the fake Bot
API: it reaches the core as a voice file (never downloaded), gets the honest "cannot understand voice yet"
reply and the call-back button, and pressing it asks the paired cadre to call."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.bootstrap import App
from bot.runners.telegram_common import incoming_from_update
from bot.settings import Settings
from bot.store.models import Case
from tests.cadre.conftest import rows
from tests.cadre.test_dialogs_e2e import Phone, cadre_and_leader
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser


def test_voice_update_translates_to_a_voice_file() -> None:
    update = {
        "update_id": 5,
        "message": {
            "message_id": 9,
            "from": {"id": 42, "first_name": "张"},
            "chat": {"id": 42, "type": "private"},
            "voice": {"file_id": "AwAD", "file_unique_id": "AgAD", "duration": 4, "file_size": 3000},
        },
    }
    inc = incoming_from_update(update)
    assert inc is not None and inc.text is None
    [ref] = inc.files
    assert (ref.file_id, ref.unique_id, ref.kind, ref.size) == ("AwAD", "AgAD", "voice", 3000)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("runner_kind", ["aiogram", "ptb"])
async def test_voice_gets_call_back_button_over_http(
    app: App, world: World, settings: Settings, api: FakeBotAPI, runner_kind: str
) -> None:
    from bot.services.onboarding import create_invite
    from bot.store.models import Household

    async with cadre_and_leader(app, world, settings, api, runner_kind, 6301) as (_runner, cadre, _leader):
        villager = Phone(api, FakeUser(6310, "大山"))
        async with app.core.sessions() as s, s.begin():
            household = await s.get(Household, world.households["张大山"])
            code = (await create_invite(s, app.core.clock.now(), household=household)).code
        villager.send(f"/start {code}")
        await villager.said("张大山")
        mark = len(api.sent)
        api.inject_voice(villager.user, b"OggS" + bytes(3000))
        reply = await villager.said("听不懂语音", since=mark)
        [[button]] = reply["params"]["reply_markup"]["inline_keyboard"]
        assert "回电话" in button["text"]
        assert api.calls("getFile") == []  # a voice message is never downloaded
        api.inject_callback(villager.user, button["callback_data"], reply)
        await villager.said("给您回电话", since=mark)
        ask: dict[str, Any] = await cadre.said("请您回电话", since=mark)
        assert "13800000001" in ask["text"]
    [case] = await rows(app, Case)
    assert case.kind == "callback" and case.cadre_id == world.cadre_ids[0]
