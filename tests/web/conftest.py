"""The dashboard served by the real aiohttp app on a test server, with a cookie jar (as a browser keeps one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import FixedClock
from bot.core.bootstrap import App
from bot.web.app import make_app


@pytest.fixture
async def web(app: App, clock: FixedClock) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(make_app(app.core.settings, clock)), cookie_jar=CookieJar(unsafe=True))
    await client.start_server()
    yield client
    await client.close()
