"""Fixtures for 微信客服 and SMS: the fake Aliyun SMS API (tests/fakesms.py) and a sender on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.sms.aliyun import AliyunSms
from bot.channels.sms.sender import SmsSender
from bot.channels.sms.templates import load_templates
from bot.clock import FixedClock
from bot.core.bootstrap import App
from tests.fakesms import FakeSms


@pytest.fixture
async def fakesms(clock: FixedClock) -> AsyncIterator[FakeSms]:
    tpls = load_templates()
    async with FakeSms({t.code: list(t.params) for t in tpls.values()}, now=clock.now) as fake:
        yield fake


@pytest.fixture
async def sms(app: App, fakesms: FakeSms, clock: FixedClock) -> AsyncIterator[SmsSender]:
    provider = AliyunSms(fakesms.url, fakesms.key_id, fakesms.secret, fakesms.sign_name)
    sender = SmsSender(app.core.sessions, provider, clock)
    yield sender
    await sender.close()
