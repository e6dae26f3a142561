"""Fixtures for runner tests: the fake Bot API server and a started runner (aiogram or PTB) talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.core.bootstrap import App
from bot.settings import Settings
from tests.fakebotapi import FakeBotAPI

RUNNERS = ["aiogram", "ptb"]


def telegram_settings(settings: Settings, api: FakeBotAPI, **extra: Any) -> Settings:
    """The test settings pointed at the fake server."""
    return settings.model_copy(
        update={"telegram_token": SecretStr(api.token), "telegram_api_url": api.url, **extra}
    )


def make_runner(kind: str, app: App, settings: Settings) -> Any:
    """A runner of the given library with short long-polling so tests stop fast."""
    if kind == "aiogram":
        from bot.runners.aiogram_runner import AiogramRunner

        return AiogramRunner(app, settings, polling_timeout=1)
    from bot.runners.ptb_runner import PTBRunner

    return PTBRunner(app, settings, polling_timeout=1)


@pytest.fixture(params=RUNNERS)
async def runner(request: pytest.FixtureRequest, app: App, settings: Settings, api: FakeBotAPI) -> AsyncIterator[Any]:
    r = make_runner(request.param, app, telegram_settings(settings, api))
    await r.start()
    try:
        yield r
    finally:
        await r.stop()
