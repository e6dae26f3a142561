"""Issue 10 #4 and #1 on both runners: the bot token never reaches a log line (PTB's httpx logs every
request URL at INFO), error lines carry ids not texts, and a forged contact card binds nobody."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot import logsafe
from bot.core.bootstrap import App
from bot.settings import Settings
from bot.store.models import Account
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import RUNNERS, make_runner, telegram_settings

TOKEN = "7012345678:AAHk3v9QxZ2mWcYtR8pLs0dNfE6uJbVaGi4"


def test_redact() -> None:
    assert TOKEN not in logsafe.redact(f"POST https://api.telegram.org/bot{TOKEN}/getUpdates")
    assert logsafe.redact(f"x {TOKEN} y") == "x <redacted> y"
    assert logsafe.redact("GET http://127.0.0.1:1/file/botABC:short/photos/1.jpg") == (
        "GET http://127.0.0.1:1/file/bot<redacted>/photos/1.jpg"
    )
    assert logsafe.redact("12:30 开会") == "12:30 开会"


@pytest.mark.parametrize("kind", RUNNERS)
async def test_token_never_logged_and_forged_contact_binds_nobody(
    kind: str, app: App, settings: Settings, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeBotAPI(token=TOKEN) as api:
        runner: Any = make_runner(kind, app, telegram_settings(settings, api))
        await runner.start()
        try:
            attacker = FakeUser(6100, "坏人")
            api.inject_message(attacker, "/start")
            await api.wait_for_sent(attacker.id)
            api.inject_contact(attacker, "13900000000", own=None)  # the leader's phone from an address book
            reply = await api.wait_for_sent(attacker.id)
            assert "自己的手机号" in reply["text"]
            api.inject_message(attacker, "/help")
            await api.wait_for_sent(attacker.id)
            await asyncio.sleep(0.2)
        finally:
            await runner.stop()
    async with app.core.sessions() as s:
        account = (await s.execute(select(Account).where(Account.external_id == "6100"))).scalar_one()
        assert account.person_id is None and account.household_id is None  # bound: 0
    text = "\n".join(caplog.messages) + "\n".join(r.exc_text or "" for r in caplog.records)
    assert caplog.records, "nothing was logged at all"
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    if kind == "ptb":
        assert "/bot<redacted>/" in text  # httpx's request lines are there, redacted
