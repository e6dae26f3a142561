"""Webhook mode on both runners: the fake server POSTs updates to the runner's web server, like Telegram."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.core.bootstrap import App
from bot.settings import Settings
from tests.botproc import free_port
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import RUNNERS, make_runner, telegram_settings


@pytest.mark.parametrize("kind", RUNNERS)
async def test_webhook_mode(kind: str, app: App, world: World, settings: Settings, api: FakeBotAPI) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/tg/hook"
    s = telegram_settings(
        settings, api, webhook_url=hook, webhook_listen="127.0.0.1", webhook_port=port,
        webhook_secret=SecretStr("s3cret-token"),
    )
    runner: Any = make_runner(kind, app, s)
    await runner.start()
    try:
        reg = await api.wait_for_request("setWebhook")
        assert reg.params["url"] == hook and reg.params["secret_token"] == "s3cret-token"
        api.inject_message(FakeUser(6001), "/help")
        reply = await api.wait_for_sent(6001)
        assert reply["text"].startswith(app.core.catalogs.get("zh_CN")("help.intro.villager"))
        assert not api.calls("getUpdates")
        # Somebody else posting to the webhook without Telegram's secret is turned away.
        async with aiohttp.ClientSession() as http, http.post(
            hook, json={"update_id": 99, "message": {}}, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}
        ) as resp:
            assert resp.status in (401, 403)
    finally:
        await runner.stop()
