"""Fixtures for the WeCom channel: the fake WeCom (tests/fakewecom.py) and a started WeComRunner."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.wecom.runner import WeComRunner
from bot.core.bootstrap import App
from bot.settings import Settings
from tests.fakewecom import FakeWeCom


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom() as fake:
        yield fake


@pytest.fixture
async def runner(app: App, settings: Settings, wecom: FakeWeCom) -> AsyncIterator[WeComRunner]:
    r = WeComRunner(app, wecom.settings(settings))
    await r.start()
    wecom.callback_url = r.url
    try:
        yield r
    finally:
        await r.stop()
