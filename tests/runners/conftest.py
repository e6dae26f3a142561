"""Fixtures for runner tests: the fake Bot API server and a started runner (aiogram or PTB) talking to it.

These tests run on the event loop `bangfu run` runs on: uvloop when it is installed, unless BANGFU_UVLOOP
is false (bot/eventloop.py); the rest of the suite runs on asyncio's own loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from pydantic import SecretStr, TypeAdapter

from bot.core.bootstrap import App
from bot.eventloop import LoopFactory, loop_factory
from bot.settings import Settings
from tests.fakebotapi import FakeBotAPI

RUNNERS = ["aiogram", "ptb"]
USE_UVLOOP = TypeAdapter(bool).validate_python(os.environ.get("BANGFU_UVLOOP", "true"))


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, LoopFactory]:
    """The loop each test here runs on (one factory: test ids unchanged)."""
    factory = loop_factory(USE_UVLOOP)
    return {"uvloop": factory} if factory is not None else {"asyncio": asyncio.new_event_loop}


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
