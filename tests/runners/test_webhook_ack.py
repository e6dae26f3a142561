"""Issue 10 #9 in webhook mode: a runner answers Telegram's POST only after the update is handled (the core
committed it and its reply is in the outbox), so a worker that dies before that gets the update again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.core.bootstrap import App
from bot.settings import Settings
from bot.store.models import Outbox, ProcessedUpdate
from tests.botproc import free_port
from tests.conftest import World
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.runners.conftest import RUNNERS, make_runner, telegram_settings

SECRET = "ack-secret"


def _update(update_id: int, user: FakeUser, text: str) -> dict[str, Any]:
    entities = [{"type": "bot_command", "offset": 0, "length": len(text)}] if text.startswith("/") else []
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()),
        "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
        "from": user.to_api(), "text": text, "entities": entities,
    }}


def _sequencer(runner: Any) -> Any:
    """The runner's per-user lock: holding it keeps the user's next update waiting, like a slow update."""
    return runner.bridge.sequencer


async def _committed(app: App, update_id: int, chat: str) -> tuple[bool, int]:
    async with app.core.sessions() as s:
        done = (await s.execute(select(ProcessedUpdate).where(ProcessedUpdate.update_id == str(update_id)))).first()
        rows = (await s.execute(select(func.count()).select_from(Outbox).where(Outbox.chat_id == chat))).scalar_one()
    return done is not None, int(rows)


@pytest.mark.parametrize("kind", RUNNERS)
async def test_webhook_answers_only_after_commit(
    kind: str, app: App, world: World, settings: Settings, api: FakeBotAPI
) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/tg/hook"
    s = telegram_settings(settings, api, webhook_url=hook, webhook_listen="127.0.0.1", webhook_port=port,
                          webhook_secret=SecretStr(SECRET), outbox_handover_s=30.0)
    runner: Any = make_runner(kind, app, s)
    await runner.start()
    user = FakeUser(6101)
    try:
        async with aiohttp.ClientSession() as http:

            async def post(update: dict[str, Any]) -> int:
                async with http.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
                    return r.status

            # The update waits (the user's previous update still running): no answer to Telegram meanwhile.
            async with _sequencer(runner).hold(str(user.id)):
                pending = asyncio.create_task(post(_update(5001, user, "/help")))
                await asyncio.sleep(0.5)
                assert not pending.done(), "answered Telegram before the update was handled"
                assert await _committed(app, 5001, str(user.id)) == (False, 0)
            assert await pending == 200
            # The moment Telegram has its 200, the update is recorded and its reply is in the outbox.
            assert await _committed(app, 5001, str(user.id)) == (True, 1)
            assert await post(_update(5002, user, "/help")) == 200
            assert await _committed(app, 5002, str(user.id)) == (True, 2)
            # Delivered again (Telegram did not see the 200): handled once, answered once.
            assert await post(_update(5002, user, "/help")) == 200
            assert await _committed(app, 5002, str(user.id)) == (True, 2)
            # The secret still guards the hook.
            async with http.post(hook, json=_update(5003, user, "/help"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
                assert r.status in (401, 403)
        await asyncio.sleep(0.2)
        assert len([m for m in api.sent if str(m["chat"]["id"]) == str(user.id)]) == 2
    finally:
        await runner.stop()
