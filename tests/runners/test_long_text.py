"""Issue 10 #17: long texts split by UTF-16 length on both runners and the standalone HTTP transport,
never inside an HTML entity or tag, tags balanced; the fake Bot API enforces Telegram's limits."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from bot.core.bootstrap import App
from bot.core.types import Photo, Reply
from bot.runners.http_transport import HttpTransport
from bot.runners.splitting import split_html, utf16_len
from bot.settings import Settings
from tests.fakebotapi import FakeBotAPI, telegram_length
from tests.runners.conftest import RUNNERS, make_runner, telegram_settings

CHAT = "6200"
EMOJI = "<b>本周小结</b> 🌾🐄🏠\n" + "\n".join(f"{i}. 张大山家 😀🚜 走访 <i>正常</i> 🌧" for i in range(700))
AMPS = "&amp;" * 1000  # 1,000 "&" as the translator renders them
LONG_LINE = "<b>" + "🐄家" * 3000 + "</b>"
ONLY_EMOJI = "🐄" * 3000


def _visible(parts: list[str]) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", "".join(parts)))


def _check(parts: list[str], original: str, limit: int = 4096) -> None:
    assert len(parts) > 1
    for p in parts:
        assert telegram_length(p, "HTML") <= limit  # balanced tags, fits in UTF-16 units
        assert not re.match(r"^[#\w]*;", re.sub(r"^(<[^>]*>)*", "", p)), p[:20]  # no "amp;" stray
    assert _visible(parts).replace("\n", "") == _visible([original]).replace("\n", "")


def test_split_html_units() -> None:
    for text in (EMOJI, AMPS, LONG_LINE):
        parts = split_html(text, 1000)
        _check(parts, text, 1000)
    assert split_html("短", 10) == ["短"] and utf16_len("😀") == 2
    assert len(ONLY_EMOJI) <= 4096 < utf16_len(ONLY_EMOJI)  # fits by characters, not by UTF-16 units


async def _send_all(transport: Any) -> None:
    for text in (EMOJI, AMPS * 5, LONG_LINE, ONLY_EMOJI):
        await transport.send(Reply(chat_id=CHAT, text=text, channel="telegram"))
    await transport.send(Reply(chat_id=CHAT, text="🌾" * 600, photo=Photo(data=b"\x89PNG\r\n\x1a\n" + b"0" * 32, filename="a.png"), channel="telegram"))


def _sent_texts(api: FakeBotAPI) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in api.sent_to(CHAT)]


def _assert_delivered(api: FakeBotAPI) -> None:
    texts = [t for t in _sent_texts(api) if t]
    assert not [r for r in api.requests if r.status != 200]
    joined = "".join(texts)
    assert "amp;" not in html.unescape(joined).replace("&", "")
    assert _visible(texts).count("&") == 5000
    assert _visible(texts).count("🐄") == 3000 + 3000 + 1
    assert "🌾" * 600 in _visible(texts)  # the long caption came as a message after the photo


@pytest.mark.parametrize("kind", RUNNERS)
async def test_runners_split_by_utf16(kind: str, app: App, settings: Settings, api: FakeBotAPI) -> None:
    runner: Any = make_runner(kind, app, telegram_settings(settings, api))
    await runner.start()
    try:
        await _send_all(runner.transport)
    finally:
        await runner.stop()
    _assert_delivered(api)


async def test_http_transport_splits_by_utf16(api: FakeBotAPI) -> None:
    async with HttpTransport(api.token, api.url) as transport:
        await _send_all(transport)
    _assert_delivered(api)
