"""Channel-neutral sending: the core says what (markup), each channel renders; the sender routes each
message by its channel; uploads carry their real content type."""

from __future__ import annotations

import pytest

from bot.core.transports import NoTransport, Transports
from bot.core.types import Outgoing, Photo, Reply
from bot.runners.render import image_type, photo_upload, plain, plain_reply_text, telegram_parse_mode

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20


def test_plain_renderer() -> None:
    text = '<b>张大山</b> &lt;全家&gt; 没水喝 &amp; 电\n<a href="https://x.y/z">详情</a> <i>斜</i><br/>下一行'
    assert plain(text) == "张大山 <全家> 没水喝 & 电\n详情 (https://x.y/z) 斜\n下一行"
    assert plain('<a href="https://a.b">https://a.b</a>') == "https://a.b"
    assert plain_reply_text(Reply("1", "<b>粗</b> &amp;", channel="console")) == "粗 &"
    assert plain_reply_text(Reply("1", "1 < 2 &amp; <b>", format="plain", channel="console")) == "1 < 2 &amp; <b>"


def test_telegram_renders_markup_as_html_and_plain_without_parse_mode() -> None:
    assert telegram_parse_mode(Reply("1", "<b>x</b>", channel="telegram")) == "HTML"
    assert telegram_parse_mode(Reply("1", "a < b", format="plain", channel="telegram")) is None


def test_reply_names_its_channel() -> None:
    with pytest.raises(TypeError):
        Reply("1", "no channel")  # type: ignore[call-arg]


def test_image_types_are_sniffed() -> None:
    assert image_type(JPEG) == ("image/jpeg", ".jpg")
    assert image_type(PNG) == ("image/png", ".png")
    assert image_type(WEBP) == ("image/webp", ".webp")
    assert image_type(b"%PDF-1.4") is None
    assert photo_upload(Photo(data=JPEG, filename="photo.png")) == ("photo.jpg", "image/jpeg")
    assert photo_upload(Photo(data=JPEG, filename="visit.jpeg")) == ("visit.jpeg", "image/jpeg")
    assert photo_upload(Photo(data=PNG, filename="chart.png")) == ("chart.png", "image/png")
    assert photo_upload(Photo(data=WEBP, filename="s")) == ("s.webp", "image/webp")


class _Recorder:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[Outgoing] = []

    async def send(self, action: Outgoing) -> str | None:
        self.sent.append(action)
        return "1"

    async def download(self, file_id: str) -> bytes:
        return b""


async def test_transports_route_by_channel() -> None:
    tg, console = _Recorder("telegram"), _Recorder("console")
    registry = Transports(tg, console)
    await registry.for_channel("console").send(Reply("7", "hi", channel="console"))
    assert console.sent and not tg.sent
    with pytest.raises(NoTransport):
        registry.for_channel("wecom")
    with pytest.raises(ValueError):
        registry.add(_Recorder("telegram"))
    assert Transports.of(registry) is registry and "telegram" in Transports.of(tg)


async def test_http_transport_uploads_photos_with_their_real_type() -> None:
    """The scheduler's Bot API client labels a JPEG as image/jpeg (it said image/png for every photo)."""
    from aiohttp import web

    from bot.runners.http_transport import HttpTransport

    seen: list[tuple[str, str | None, str | None]] = []

    async def send_photo(request: web.Request) -> web.Response:
        async for part in await request.multipart():
            if part.name == "photo":  # type: ignore[union-attr]
                seen.append((part.name, part.filename, part.headers.get("Content-Type")))  # type: ignore[union-attr]
        return web.json_response({"ok": True, "result": {"message_id": 5}})

    app = web.Application()
    app.router.add_post("/botT/sendPhoto", send_photo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with HttpTransport("T", f"http://127.0.0.1:{port}") as transport:
            await transport.send(Reply("1", "照片", photo=Photo(data=JPEG, filename="photo.png"), channel="telegram"))
            await transport.send(Reply("1", None, photo=Photo(data=PNG, filename="chart.png"), channel="telegram"))
    finally:
        await runner.cleanup()
    assert seen == [("photo", "photo.jpg", "image/jpeg"), ("photo", "chart.png", "image/png")]
